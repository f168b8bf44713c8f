"""The admin API's bodies as pydantic models: they make the OpenAPI document.

Entity documents are validated by ``quiver.config.validate`` (so messages are a
config file's), not by these models: an entity body is taken as a plain JSON
object and only *documented* with the config model's schema (see openapi.py).
A stored document is described loosely (an object with a ``name``) because it
keeps the shorthands it was written with, which the config models accept but
their schemas do not all spell out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from quiver.accounts.memberships import TeamRole
from quiver.config.models import NAME_PATTERN
from quiver.store import Revision
from quiver.store.tokens import TokenInfo


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class EntityDoc(Open):
    """A target, route or consumer as in quiver.yaml (keys hashed, passwords hashed)."""

    name: str


class EntityPage(BaseModel):
    data: list[EntityDoc]
    next: str | None = Field(description="Cursor of the next page; null on the last page.")


class PluginDoc(BaseModel):
    name: str
    config: dict[str, Any]


class PluginPage(BaseModel):
    data: list[PluginDoc]
    next: str | None


class CredentialDoc(Open):
    """A consumer's credential as stored (secrets hashed), with its id."""

    id: str = Field(description="First 16 hex digits of sha256(plugin + canonical document).")
    plugin: str = Field(description="The authentication plugin that checks it, e.g. key-auth.")


class CredentialPage(BaseModel):
    data: list[CredentialDoc]
    next: str | None


class NewCredential(Open):
    """``{"plugin": "key-auth", "key": "..."}``: the plugin and the credential's keys."""

    plugin: str


class NodeDoc(Open):
    url: str
    weight: int = 1


class Nodes(BaseModel):
    nodes: list[dict[str, Any]] = Field(description="The target's nodes ({url, weight}).")


class Change(Open):
    kind: Literal["section", "target", "route", "consumer", "api", "plugin"]
    name: str
    before: Any = None
    after: Any = None
    position: list[int] | None = None


class DiffDoc(BaseModel):
    added: list[Change]
    changed: list[Change]
    removed: list[Change]


class Counts(BaseModel):
    added: int
    changed: int
    removed: int


class RevisionSummary(BaseModel):
    number: int
    team: str
    author: str = Field(description="The name of the token that made it.")
    created_at: datetime
    message: str
    changes: Counts

    @classmethod
    def of(cls, revision: Revision) -> RevisionSummary:
        return cls(
            number=revision.number,
            team=revision.team,
            author=revision.author,
            created_at=revision.created_at,
            message=revision.message,
            changes=Counts(
                **{key: len(revision.diff[key]) for key in ("added", "changed", "removed")}
            ),
        )


class RevisionDetail(RevisionSummary):
    diff: DiffDoc

    @classmethod
    def of(cls, revision: Revision) -> RevisionDetail:
        summary = RevisionSummary.of(revision)
        return cls(**summary.model_dump(), diff=DiffDoc.model_validate(revision.diff))


class RevisionPage(BaseModel):
    data: list[RevisionSummary]
    next: str | None


class Rollback(BaseModel):
    message: str | None = Field(None, max_length=4096)


class RevisionResult(BaseModel):
    revision: RevisionSummary | None = Field(
        description="The new revision; null when nothing changed."
    )


class ConfigDoc(BaseModel):
    revision: int = Field(description="The team's latest revision (0 before any).")
    team: str
    document: dict[str, Any]


class DocumentIn(BaseModel):
    document: dict[str, Any] = Field(description="A whole declaration, as in quiver.yaml.")


class ApplyIn(DocumentIn):
    message: str = Field("", max_length=4096)


class DiffResult(BaseModel):
    diff: DiffDoc
    equal: bool


class ApplyResult(BaseModel):
    revision: RevisionSummary | None
    diff: DiffDoc


class TeamDoc(BaseModel):
    name: str = Field(pattern=NAME_PATTERN)


class TeamPage(BaseModel):
    data: list[TeamDoc]
    next: str | None


class MemberDoc(BaseModel):
    email: str
    name: str = Field(description="The member's display name (may be empty).")
    role: TeamRole = Field(description="owner > admin > developer > viewer.")


class MemberPage(BaseModel):
    data: list[MemberDoc]
    next: str | None


class MemberRole(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: TeamRole = Field(
        description="The member's role in the team: owner, admin, developer or viewer."
    )


class TokenDoc(BaseModel):
    name: str
    role: Literal["admin", "editor", "viewer"]
    team: str | None
    created_at: datetime

    @classmethod
    def of(cls, token: TokenInfo) -> TokenDoc:
        return cls(name=token.name, role=token.role, team=token.team, created_at=token.created_at)


class TokenPage(BaseModel):
    data: list[TokenDoc]
    next: str | None


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, description="Shown as the author of its revisions.")
    role: Literal["admin", "editor", "viewer"]
    team: str | None = Field(None, description="Scope the token to this team.")


class CreatedToken(TokenDoc):
    token: str = Field(description="The token itself (qv_...): shown only this once.")


class Health(BaseModel):
    status: Literal["ok"]
