"""Several remote MCP servers as one :class:`~quiver.mcp.contract.Provider`.

What an ``mcp`` target serves: the tools, resources and prompts of its servers,
listed together, each call sent to the server it belongs to::

    aggregate = Aggregate.from_options(options, context.outbound)
    await aggregate.connect()            # optional: learn the servers' capabilities
    tools = await aggregate.list_tools(caller)
    result = await aggregate.call_tool(caller, "weather_forecast", {"city": "Oslo"})

- A server's tools and prompts are listed with its ``prefix`` put before their
  names, and a call strips it; resource URIs are kept as they are.  Which server
  a name or a URI belongs to is known from the last listing (an index per
  worker); a call naming something not in it lists first (at most once a
  second), and a URI no listed resource has goes to the server whose resource
  template's fixed start matches it best.  When two servers offer the same name
  (or URI), the one listed first in the config wins.
- Lists ask every server at once; a server that fails is left out (logged),
  while a call to it fails with its error.
- The ``access`` rules (:mod:`quiver.mcp.access`) filter both ways: what a
  caller may not see is not listed, and a call to it is refused exactly as a
  call to something that does not exist.
- Results are the servers' own, passed back as they are.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from quiver.config.mcp import McpAccessRule, McpTargetOptions
from quiver.errors import HTTPError
from quiver.mcp.access import Access, Kind
from quiver.mcp.contract import INVALID_PARAMS, RESOURCE_NOT_FOUND, Caller, McpError
from quiver.mcp.upstream import Session, UpstreamServer
from quiver.plugins.outbound import Outbound

log = logging.getLogger(__name__)

#: the least time between two listings made because a call named something unknown
RELIST_INTERVAL = 1.0
KINDS: tuple[Kind, ...] = ("tools", "resources", "prompts")
_TEMPLATE_START = re.compile(r"^[^{]*")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Member:
    """One server of an aggregate and the prefix of its names."""

    server: UpstreamServer
    prefix: str = ""

    @property
    def name(self) -> str:
        return self.server.name


#: the sessions of an aggregate's servers, let go of and still to end
Released = list[tuple[UpstreamServer, Session | None]]


class Aggregate:
    """The servers of one ``mcp`` target, as one provider; one per worker."""

    def __init__(self, members: Sequence[Member], access: Sequence[McpAccessRule] = ()) -> None:
        self.members = tuple(members)
        self.access = Access(access)
        # name (as clients see it) -> (member, name at the server)
        self._tools: dict[str, tuple[Member, str]] = {}
        self._prompts: dict[str, tuple[Member, str]] = {}
        self._resources: dict[str, Member] = {}
        # (fixed start of a URI template, member), longest start first
        self._templates: list[tuple[str, Member]] = []
        self._listed_at: dict[Kind, float] = dict.fromkeys(KINDS, float("-inf"))
        self._relisting: dict[Kind, asyncio.Lock] = {kind: asyncio.Lock() for kind in KINDS}

    @classmethod
    def from_options(cls, options: McpTargetOptions, outbound: Outbound) -> Aggregate:
        members = [
            Member(
                UpstreamServer(
                    outbound,
                    server.url,
                    name=server.name,
                    transport=server.transport,
                    protocol=server.protocol,
                    headers=server.headers,
                    timeout=server.timeout,
                ),
                server.prefix,
            )
            for server in options.servers
        ]
        return cls(members, options.access)

    # -- life ---------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        """``tools``, ``resources`` and ``prompts`` when any server has them (a
        server not reached yet counts as having all three: see :meth:`connect`).
        No ``listChanged`` or ``subscribe``: the gateway relays no notifications."""
        capabilities: dict[str, Any] = {}
        for member in self.members:
            session = member.server.session
            for kind in KINDS:
                if session is None or kind in session.capabilities:
                    capabilities[kind] = {}
        return capabilities

    async def connect(self) -> None:
        """Settle with every server at once (a server that fails is logged and
        tried again when next used)."""
        await self._each(lambda member: member.server.connect(), "connecting")

    async def close(self) -> None:
        await self.end(self.release())

    def release(self) -> Released:
        """Let go of every server's session at once (event streams are closed now);
        what :meth:`end` then ends at the servers."""
        return [(member.server, member.server.release()) for member in self.members]

    @staticmethod
    async def end(released: Released) -> None:
        """End released sessions at their servers (best effort, all at once)."""
        await asyncio.gather(
            *(server.end(session) for server, session in released), return_exceptions=True
        )

    # -- Provider -----------------------------------------------------------------

    async def list_tools(self, caller: Caller) -> list[dict[str, Any]]:
        tools = await self._list_named("tools", "tools/list", self._tools)
        view = self.access.view(caller.consumer)
        return [tool for tool in tools if view.allows("tools", tool["name"])]

    async def call_tool(
        self, caller: Caller, name: str, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        member, upstream_name = await self._find_named(caller, "tools", name, self._tools)
        caller.note["server"] = member.name
        params = {"name": upstream_name, "arguments": arguments}
        return await member.server.request("tools/call", params)

    async def list_prompts(self, caller: Caller) -> list[dict[str, Any]]:
        prompts = await self._list_named("prompts", "prompts/list", self._prompts)
        view = self.access.view(caller.consumer)
        return [prompt for prompt in prompts if view.allows("prompts", prompt["name"])]

    async def get_prompt(
        self, caller: Caller, name: str, arguments: dict[str, str]
    ) -> dict[str, Any]:
        member, upstream_name = await self._find_named(caller, "prompts", name, self._prompts)
        caller.note["server"] = member.name
        params: dict[str, Any] = {"name": upstream_name, "arguments": arguments}
        return await member.server.request("prompts/get", params)

    async def list_resources(self, caller: Caller) -> list[dict[str, Any]]:
        resources = await self._list_resources()
        view = self.access.view(caller.consumer)
        return [item for item in resources if view.allows("resources", item["uri"])]

    async def list_resource_templates(self, caller: Caller) -> list[dict[str, Any]]:
        templates = await self._list_templates()
        view = self.access.view(caller.consumer)
        return [item for item in templates if view.allows("resources", item["uriTemplate"])]

    async def read_resource(self, caller: Caller, uri: str) -> dict[str, Any]:
        unknown = McpError(RESOURCE_NOT_FOUND, f"unknown resource: {uri}", {"uri": uri})
        if not self.access.view(caller.consumer).allows("resources", uri):
            raise unknown
        member = self._resource_member(uri)
        if member is None and await self._relist("resources", self._list_resources_and_templates):
            member = self._resource_member(uri)
        if member is None:
            raise unknown
        caller.note["server"] = member.name
        return await member.server.request("resources/read", {"uri": uri})

    # -- listing ------------------------------------------------------------------

    async def _list_named(
        self, kind: Kind, method: str, index: dict[str, tuple[Member, str]]
    ) -> list[dict[str, Any]]:
        """Every server's tools or prompts under the names clients see; ``index``
        is made again from the servers that answered."""
        listed = await self._gather(kind, method, kind)
        answered = {id(member) for member, _ in listed}
        fresh = {key: entry for key, entry in index.items() if id(entry[0]) not in answered}
        items: list[dict[str, Any]] = []
        for member, page in listed:
            for item in page:
                name = item.get("name")
                if not isinstance(name, str):
                    continue
                visible = member.prefix + name
                if visible in fresh and id(fresh[visible][0]) in answered:
                    log.warning(
                        "MCP server %r: %s %r is offered by %r already; left out",
                        member.name,
                        kind[:-1],
                        visible,
                        fresh[visible][0].name,
                    )
                    continue
                fresh[visible] = (member, name)
                items.append({**item, "name": visible})
        index.clear()
        index.update(fresh)
        self._listed_at[kind] = asyncio.get_running_loop().time()
        return items

    async def _list_resources(self) -> list[dict[str, Any]]:
        listed = await self._gather("resources", "resources/list", "resources")
        answered = {id(member) for member, _ in listed}
        fresh = {uri: m for uri, m in self._resources.items() if id(m) not in answered}
        items: list[dict[str, Any]] = []
        for member, page in listed:
            for item in page:
                uri = item.get("uri")
                if not isinstance(uri, str) or (uri in fresh and id(fresh[uri]) in answered):
                    continue
                fresh[uri] = member
                items.append(item)
        self._resources = fresh
        self._listed_at["resources"] = asyncio.get_running_loop().time()
        return items

    async def _list_templates(self) -> list[dict[str, Any]]:
        listed = await self._gather("resources", "resources/templates/list", "resourceTemplates")
        answered = {id(member) for member, _ in listed}
        fresh = [(start, m) for start, m in self._templates if id(m) not in answered]
        items: list[dict[str, Any]] = []
        for member, page in listed:
            for item in page:
                template = item.get("uriTemplate")
                if not isinstance(template, str):
                    continue
                match = _TEMPLATE_START.match(template)
                fresh.append((match.group() if match else "", member))
                items.append(item)
        fresh.sort(key=lambda entry: len(entry[0]), reverse=True)
        self._templates = fresh
        return items

    async def _list_resources_and_templates(self) -> None:
        await asyncio.gather(self._list_resources(), self._list_templates())

    async def _gather(
        self, kind: Kind, method: str, key: str
    ) -> list[tuple[Member, list[dict[str, Any]]]]:
        """``method``'s whole list from every server having ``kind``, at once."""

        async def one(member: Member) -> list[dict[str, Any]]:
            session = await member.server.connect()
            if kind not in session.capabilities:
                return []
            return await member.server.list_all(method, key)

        return await self._each(one, method)

    async def _each(
        self, work: Callable[[Member], Awaitable[T]], what: str
    ) -> list[tuple[Member, T]]:
        """``work`` for every member at once; the members whose work failed are
        logged and left out."""
        outcomes = await asyncio.gather(
            *(work(member) for member in self.members), return_exceptions=True
        )
        done: list[tuple[Member, T]] = []
        for member, outcome in zip(self.members, outcomes, strict=True):
            if isinstance(outcome, HTTPError | McpError):
                detail = outcome.detail if isinstance(outcome, HTTPError) else outcome.message
                log.warning("MCP server %r left out of %s: %s", member.name, what, detail)
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                done.append((member, outcome))
        return done

    # -- finding ------------------------------------------------------------------

    async def _find_named(
        self, caller: Caller, kind: Kind, name: str, index: dict[str, tuple[Member, str]]
    ) -> tuple[Member, str]:
        unknown = McpError(INVALID_PARAMS, f"unknown {kind[:-1]}: {name}")
        if not self.access.view(caller.consumer).allows(kind, name):
            raise unknown
        entry = index.get(name)
        if entry is None:
            method = f"{kind}/list"
            if await self._relist(kind, lambda: self._list_named(kind, method, index)):
                entry = index.get(name)
        if entry is None:
            raise unknown
        return entry

    async def _relist(self, kind: Kind, listing: Callable[[], Awaitable[Any]]) -> bool:
        """List ``kind`` again unless that was done within RELIST_INTERVAL; False
        when nothing new can be known."""
        loop = asyncio.get_running_loop()
        before = self._listed_at[kind]
        async with self._relisting[kind]:
            if self._listed_at[kind] != before:
                return True  # listed meanwhile by another caller
            if loop.time() - before < RELIST_INTERVAL:
                return False
            await listing()
            return True

    def _resource_member(self, uri: str) -> Member | None:
        member = self._resources.get(uri)
        if member is not None:
            return member
        for start, candidate in self._templates:
            if start and uri.startswith(start):
                return candidate
        return None
