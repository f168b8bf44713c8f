"""Users and memberships in the store; signing up makes a user owning a team of their own."""

from __future__ import annotations

import pytest

from quiver.accounts.memberships import (
    allows,
    members_of,
    memberships_of,
    remove_membership,
    set_membership,
)
from quiver.accounts.passwords import WeakPassword
from quiver.accounts.signin import sign_up, team_name_for
from quiver.accounts.users import (
    EmailTaken,
    InvalidEmail,
    create_user,
    list_users,
    user_by_email,
)
from quiver.store import Store, UnknownTeam
from quiver.store.teams import create_team, delete_team, list_teams

PASSWORD = "a long enough passphrase"


def test_an_email_is_kept_lowercased_and_is_one_account_in_any_case(store: Store) -> None:
    user = create_user(store, "  Ada@Example.COM ", PASSWORD, name="Ada", is_admin=True)
    assert (user.email, user.display_name, user.is_admin, user.disabled) == (
        "ada@example.com",
        "Ada",
        True,
        False,
    )
    found = user_by_email(store, "ADA@example.com")
    assert found is not None and found[0] == user
    assert found[1].startswith("scrypt$32768$8$1$")
    with pytest.raises(EmailTaken):
        create_user(store, "ada@EXAMPLE.com", PASSWORD)
    assert [u.email for u in list_users(store)] == ["ada@example.com"]


def test_a_user_tells_nothing_of_the_password_in_its_repr(store: Store) -> None:
    user = create_user(store, "ada@example.com", PASSWORD)
    assert "scrypt" not in repr(user) and PASSWORD not in repr(user)


@pytest.mark.parametrize("email", ["", "   ", "ada", "ada@", "@example.com", "a b@example.com"])
def test_a_malformed_email_is_refused(store: Store, email: str) -> None:
    with pytest.raises(InvalidEmail) as refused:
        create_user(store, email, PASSWORD)
    assert refused.value.field == "email"


def test_a_short_password_makes_no_user(store: Store) -> None:
    with pytest.raises(WeakPassword):
        create_user(store, "ada@example.com", "short")
    assert list_users(store) == []


def test_memberships_are_set_changed_listed_and_removed(store: Store) -> None:
    user = create_user(store, "ada@example.com", PASSWORD)
    create_team(store, "payments")
    create_team(store, "search")
    set_membership(store, user.id, "payments", "developer")
    set_membership(store, user.id, "search", "viewer")
    set_membership(store, user.id, "payments", "admin")
    assert memberships_of(store, user.id) == {"payments": "admin", "search": "viewer"}
    assert members_of(store, "payments") == {user.id: "admin"}
    assert remove_membership(store, user.id, "search")
    assert not remove_membership(store, user.id, "search")
    with pytest.raises(UnknownTeam):
        set_membership(store, user.id, "nope", "viewer")


def test_deleting_a_team_removes_its_memberships(store: Store) -> None:
    user = create_user(store, "ada@example.com", PASSWORD)
    create_team(store, "payments")
    set_membership(store, user.id, "payments", "owner")
    delete_team(store, "payments")
    assert memberships_of(store, user.id) == {}


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [
        ("owner", "admin", True),
        ("admin", "developer", True),
        ("developer", "developer", True),
        ("developer", "admin", False),
        ("viewer", "developer", False),
        ("admin", "owner", False),
    ],
)
def test_roles_rank_owner_admin_developer_viewer(role: str, needed: str, allowed: bool) -> None:
    assert allows(role, needed) is allowed  # type: ignore[arg-type]


def test_signing_up_makes_a_user_owning_a_team_named_after_the_email(store: Store) -> None:
    first = sign_up(store, "Ada.Lovelace+api@example.com", PASSWORD, "Ada")
    assert first.team == "ada.lovelace-api"
    assert memberships_of(store, first.user.id) == {"ada.lovelace-api": "owner"}
    assert not first.user.is_admin
    second = sign_up(store, "ada.lovelace+API@example.org", PASSWORD)
    assert second.team == "ada.lovelace-api-2"
    assert set(list_teams(store)) == {"default", "ada.lovelace-api", "ada.lovelace-api-2"}


def test_signing_up_with_a_taken_email_makes_no_team(store: Store) -> None:
    sign_up(store, "ada@example.com", PASSWORD)
    with pytest.raises(EmailTaken):
        sign_up(store, "ADA@example.com", PASSWORD)
    assert list_teams(store) == ["ada", "default"]


@pytest.mark.parametrize(
    ("email", "team"),
    [
        ("ada@example.com", "ada"),
        ("Ada.Lovelace@example.com", "ada.lovelace"),
        ("__x__@example.com", "x"),
        ("-.-@example.com", "team"),
        ("名前@example.com", "team"),
        ("a" * 80 + "@example.com", "a" * 40),
        ("first last@example.com", "first-last"),
    ],
)
def test_a_team_name_is_derived_from_the_email(email: str, team: str) -> None:
    assert team_name_for(email) == team
