"""The admin API as the declarative commands use it: whole documents and revisions.

Every call answers plain data, or raises :class:`AdminError` carrying the problem
document the API answered (or why there was no answer), so that the commands can say
what went wrong in one line and, for an invalid document, where in the file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import httpx

from quiver.declarative import DEFAULT_ADMIN, TOKEN_VARIABLE

_TIMEOUT = httpx.Timeout(60.0, connect=5.0)  # an apply of thousands of routes takes seconds
# httpx logs every request at INFO: a command's output is what it prints, not its calls
logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass
class AdminError(Exception):
    """The admin API refused a call (``problem`` is its answer) or could not be reached."""

    message: str
    problem: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


class AdminClient:
    def __init__(self, base_url: str, token: str | None, team: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self.team = team
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=_TIMEOUT)

    @classmethod
    def from_environment(cls, base_url: str | None, team: str | None) -> AdminClient:
        return cls(base_url or DEFAULT_ADMIN, os.environ.get(TOKEN_VARIABLE), team)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def config(self) -> dict[str, Any]:
        """``{"revision": N, "team": T, "document": {...}}``: the team's declaration."""
        return self._call("GET", "/config")

    def diff(self, document: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/config/diff", {"document": document})

    def apply(self, document: dict[str, Any], message: str) -> dict[str, Any]:
        return self._call("POST", "/config/apply", {"document": document, "message": message})

    def rollback(self, number: int, message: str | None) -> dict[str, Any]:
        body = {} if message is None else {"message": message}
        return self._call("POST", f"/revisions/{number}/rollback", body)

    def calls(self, query: dict[str, str | int]) -> dict[str, Any]:
        """A page of the call log (``GET /calls``), newest first."""
        return self._call("GET", "/calls", query=query)

    def _call(
        self,
        method: str,
        path: str,
        body: object = None,
        query: dict[str, str | int] | None = None,
    ) -> dict[str, Any]:
        params: dict[str, str | int] = dict(query or {})
        if self.team:
            params["team"] = self.team
        try:
            response = self._http.request(method, path, params=params or None, json=body)
        except httpx.HTTPError as exc:
            raise AdminError(f"cannot reach the admin API at {self.base_url}: {exc}") from None
        if response.is_success:
            answer: dict[str, Any] = response.json()
            return answer
        raise _refusal(response, self.base_url)


def _refusal(response: httpx.Response, base_url: str) -> AdminError:
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    detail = problem.get("detail") or problem.get("title") or response.reason_phrase
    if response.status_code == 401:
        detail = f"the admin API at {base_url} wants a valid token in ${TOKEN_VARIABLE} ({detail})"
    return AdminError(f"{detail} (HTTP {response.status_code})", problem)
