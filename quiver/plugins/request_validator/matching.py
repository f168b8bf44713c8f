"""Finding the OpenAPI operation a request is for: its method and path template."""

from __future__ import annotations

from typing import Any

from quiver.http.normalize import normalize_path
from quiver.plugins.request_validator.checks import BodyCheck
from quiver.plugins.request_validator.operations import Check, Compiler, path_parameters
from quiver.plugins.request_validator.problems import MethodNotAllowed, UnknownOperation


class Operations:
    """The operations of one document, found by method and (normalized) request path."""

    def __init__(self, document: dict[str, Any], *, base_path: str, reject_unknown: bool) -> None:
        self.items = Compiler(document).path_items()
        self.base_path = base_path.rstrip("/")
        self.reject_unknown = reject_unknown
        #: some operation takes a body, so request bodies are read
        self.reads_body = any(
            isinstance(check, BodyCheck)
            for item in self.items
            for checks in item.operations.values()
            for check in checks
        )

    def find(
        self, method: bytes, raw_path: bytes
    ) -> tuple[tuple[Check, ...], dict[str, list[str]]]:
        """The checks of the request's operation, with its path parameters; no checks
        for an unknown operation, unless those are refused (404, or 405)."""
        verb = method.decode("latin-1")
        path = self._relative(raw_path)
        allowed: list[str] = []
        if path is not None:
            for item in self.items:
                match = item.pattern.fullmatch(path)
                if match is None:
                    continue
                checks = item.checks(verb)
                if checks is not None:
                    return checks, path_parameters(item, match)
                allowed += [m for m in item.operations if m not in allowed]
        if not self.reject_unknown:
            return (), {}
        shown = raw_path.decode("latin-1")
        if allowed:
            if "GET" in allowed and "HEAD" not in allowed:
                allowed.append("HEAD")
            raise MethodNotAllowed(f"{verb} is not an operation of {shown}", allowed)
        raise UnknownOperation(f"no operation of the API matches {verb} {shown}")

    def _relative(self, raw_path: bytes) -> str | None:
        """The request's path as the document's paths are written, or None outside them."""
        normal = normalize_path(raw_path)
        if normal is None:
            return None
        path = normal.decode("latin-1")
        if not self.base_path:
            return path
        if path == self.base_path:
            return "/"
        if path.startswith(self.base_path + "/"):
            return path[len(self.base_path) :]
        return None
