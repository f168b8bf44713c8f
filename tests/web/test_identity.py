"""Who a session is and what they may do in which team: users by their memberships,
platform admins and tokens by their role."""

from __future__ import annotations

import pytest

from quiver.accounts.memberships import set_membership
from quiver.accounts.sessions import create_session
from quiver.accounts.users import create_user
from quiver.store import Store
from quiver.store.models import Role
from quiver.store.teams import create_team
from quiver.store.tokens import create_token
from quiver.store.tokens import identify as find_token
from quiver.web.errors import NoAccess, PageNotFound
from quiver.web.identity import SignedIn, identify, require_role
from tests.web.forms import PASSWORD


def _user(store: Store, *, is_admin: bool = False, roles: dict[str, str] | None = None) -> SignedIn:
    user = create_user(
        store, f"u{len(roles or {})}{is_admin}@example.com", PASSWORD, is_admin=is_admin
    )
    for team, role in (roles or {}).items():
        set_membership(store, user.id, team, role)  # type: ignore[arg-type]
    session_id, _ = create_session(store, "console", user_id=user.id)
    who = identify(store, session_id, "console")
    assert who is not None
    return who


def _token(store: Store, role: Role, team: str | None) -> SignedIn:
    _, token = create_token(store, f"{role}-{team}", role, team)
    found = find_token(store, token)
    assert found is not None
    session_id, _ = create_session(store, "console", token_id=found[0])
    who = identify(store, session_id, "console")
    assert who is not None
    return who


@pytest.fixture
def teams(store: Store) -> Store:
    for team in ("payments", "search"):
        create_team(store, team)
    return store


def test_a_member_has_the_roles_of_their_memberships_only(teams: Store) -> None:
    who = _user(teams, roles={"payments": "developer"})
    assert who.role_in("payments") == "developer" and who.role_in("search") is None
    assert not who.operator and who.team_roles() == [("payments", "developer")]
    assert require_role(who, "payments", "viewer") == "developer"
    with pytest.raises(NoAccess, match="needs the admin role in team 'payments'"):
        require_role(who, "payments", "admin")
    with pytest.raises(PageNotFound, match="no team 'search'"):
        require_role(who, "search", "viewer")


def test_a_platform_admin_owns_every_team_that_exists(teams: Store) -> None:
    who = _user(teams, is_admin=True)
    assert who.operator and who.role_in("search") == "owner"
    assert who.team_roles() == [("default", "owner"), ("payments", "owner"), ("search", "owner")]
    with pytest.raises(PageNotFound):
        require_role(who, "nope", "viewer")


@pytest.mark.parametrize(
    ("role", "team", "payments", "search", "operator"),
    [
        ("admin", None, "owner", "owner", True),
        ("editor", None, "developer", "developer", False),
        ("viewer", None, "viewer", "viewer", False),
        ("admin", "payments", "admin", None, False),
        ("editor", "payments", "developer", None, False),
        ("viewer", "payments", "viewer", None, False),
    ],
)
def test_a_token_session_acts_with_the_tokens_role_and_team(
    teams: Store,
    role: Role,
    team: str | None,
    payments: str,
    search: str | None,
    operator: bool,
) -> None:
    who = _token(teams, role, team)
    assert (who.role_in("payments"), who.role_in("search"), who.operator) == (
        payments,
        search,
        operator,
    )
    assert who.role_in("nope") is None
    assert who.name == f"token {role}-{team}" and who.user is None
