"""Store.edit, admin tokens and teams, on each database."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from quiver.store import Current, Store, UnknownTeam
from quiver.store.models import AdminToken
from quiver.store.teams import TeamExists, TeamNotEmpty, create_team, delete_team, list_teams
from quiver.store.tokens import (
    TokenExists,
    authenticate,
    count_tokens,
    create_token,
    list_tokens,
    revoke_token,
    seed_token,
)

TARGET = {"name": "a", "url": "http://127.0.0.1:9001"}


class Refused(Exception):
    pass


def test_edit_changes_the_current_document_in_one_revision(store: Store) -> None:
    store.apply({"targets": [TARGET]}, author="t")

    def add(current: Current) -> object:
        assert current.revision == 1
        current.document["targets"].append({"name": "b", "url": "http://127.0.0.1:9002"})
        return current.document

    edit = store.edit(None, add, author="editor", message="add b")
    assert edit.revision is not None and edit.revision.number == 2 and edit.latest == 2
    assert [item["name"] for item in edit.document["targets"]] == ["a", "b"]
    assert store.state().revision == 2 and store.state().document == edit.document
    unchanged = store.edit(None, lambda current: current.document, author="editor")
    assert unchanged.revision is None and unchanged.latest == 2


def test_an_edit_that_raises_writes_nothing(store: Store) -> None:
    store.apply({"targets": [TARGET]}, author="t")

    def refuse(current: Current) -> object:
        current.document["targets"].clear()
        raise Refused

    with pytest.raises(Refused):
        store.edit(None, refuse, author="x")
    assert store.current() == {"targets": [TARGET]} and len(store.revisions()) == 1


def test_edit_needs_an_existing_team(store: Store) -> None:
    with pytest.raises(UnknownTeam):
        store.edit("nope", lambda current: {"targets": [TARGET]}, author="x")
    create_team(store, "nope")
    assert store.edit("nope", lambda current: {"targets": [TARGET]}, author="x").revision


def test_tokens_are_kept_hashed_and_checked(store: Store) -> None:
    create_team(store, "blue")
    info, token = create_token(store, "ci", "editor", "blue")
    assert (info.name, info.role, info.team) == ("ci", "editor", "blue")
    assert token.startswith("qv_") and len(token) == 46
    with store._transaction() as session:
        stored = session.scalars(select(AdminToken.token_hash)).all()
    assert stored == ["sha256:" + hashlib.sha256(token.encode()).hexdigest()]
    assert authenticate(store, token) == info
    assert authenticate(store, token + "x") is None
    with pytest.raises(TokenExists):
        create_token(store, "ci", "viewer")
    with pytest.raises(UnknownTeam):
        create_token(store, "other", "viewer", "red")
    assert [item.name for item in list_tokens(store)] == ["ci"]
    assert revoke_token(store, "ci") and not revoke_token(store, "ci")
    assert authenticate(store, token) is None and count_tokens(store) == 0


def test_a_seeded_token_replaces_the_one_of_its_name(store: Store) -> None:
    seed_token(store, "qv_first", "admin-env")
    seed_token(store, "qv_first", "admin-env")
    seed_token(store, "qv_second", "admin-env")
    assert authenticate(store, "qv_first") is None
    assert authenticate(store, "qv_second") is not None and count_tokens(store) == 1


def test_teams_are_deleted_only_when_empty_with_their_tokens(store: Store) -> None:
    create_team(store, "blue")
    with pytest.raises(TeamExists):
        create_team(store, "blue")
    assert list_teams(store) == ["blue", "default"]
    store.apply({"targets": [TARGET]}, author="t", team="blue")
    _, token = create_token(store, "blue-bot", "viewer", "blue")
    with pytest.raises(TeamNotEmpty):
        delete_team(store, "blue")
    with pytest.raises(TeamNotEmpty):
        delete_team(store, "default")
    store.apply({}, author="t", team="blue")
    delete_team(store, "blue")
    assert list_teams(store) == ["default"]
    assert authenticate(store, token) is None and store.revisions("blue") == []
    with pytest.raises(UnknownTeam):
        delete_team(store, "blue")
