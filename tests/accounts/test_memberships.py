"""Managing a team's members: a team always keeps an owner, even when two demotions
race, and only an owner grants or takes away the owner role."""

from __future__ import annotations

import threading

import pytest

from quiver.accounts.memberships import (
    LastOwner,
    NoAccount,
    OwnerOnly,
    TeamRole,
    assign_role,
    member_counts,
    members_of,
    remove_member,
    team_members,
)
from quiver.accounts.users import create_user
from quiver.store import Store, UnknownTeam
from quiver.store.teams import create_team

PASSWORD = "a long enough passphrase"


def _team(store: Store, **people: TeamRole) -> dict[str, int]:
    """Team ``payments`` with ``people`` (local part of the email: role); their ids."""
    create_team(store, "payments")
    ids: dict[str, int] = {}
    for name, role in people.items():
        ids[name] = create_user(store, f"{name}@example.com", PASSWORD, name=name.title()).id
        assign_role(store, "payments", f"{name}@example.com", role, by="owner")
    return ids


def test_members_are_added_changed_listed_and_removed(store: Store) -> None:
    ids = _team(store, olive="owner", dev="developer")
    assert assign_role(store, "payments", "Dev@Example.com", "admin", by="owner") == "developer"
    assert [(m.email, m.display_name, m.role) for m in team_members(store, "payments")] == [
        ("dev@example.com", "Dev", "admin"),
        ("olive@example.com", "Olive", "owner"),
    ]
    assert member_counts(store) == {"payments": 2}
    assert remove_member(store, "payments", "dev@example.com", by="owner") == "admin"
    assert remove_member(store, "payments", "dev@example.com", by="owner") is None
    assert members_of(store, "payments") == {ids["olive"]: "owner"}


def test_an_unknown_email_or_team_is_refused(store: Store) -> None:
    _team(store, olive="owner")
    with pytest.raises(NoAccount) as refused:
        assign_role(store, "payments", "nobody@example.com", "viewer", by="owner")
    assert refused.value.field == "email" and "sign up" in str(refused.value)
    with pytest.raises(NoAccount):
        remove_member(store, "payments", "nobody@example.com", by="owner")
    with pytest.raises(UnknownTeam):
        assign_role(store, "nope", "olive@example.com", "viewer", by="owner")


def test_the_last_owner_is_neither_demoted_nor_removed(store: Store) -> None:
    _team(store, olive="owner", dev="developer")
    with pytest.raises(LastOwner, match="at least one owner"):
        assign_role(store, "payments", "olive@example.com", "admin", by="owner")
    with pytest.raises(LastOwner):
        remove_member(store, "payments", "olive@example.com", by="owner")
    assign_role(store, "payments", "dev@example.com", "owner", by="owner")
    assert remove_member(store, "payments", "olive@example.com", by="owner") == "owner"
    assert [(m.email, m.role) for m in team_members(store, "payments")] == [
        ("dev@example.com", "owner")
    ]


@pytest.mark.parametrize(
    ("email", "role"),
    [
        ("dev@example.com", "owner"),  # grant the owner role
        ("olive@example.com", "developer"),  # demote an owner
        ("new@example.com", "owner"),  # add an owner
    ],
)
def test_an_admin_manages_only_the_members_below_owner(
    store: Store, email: str, role: TeamRole
) -> None:
    _team(store, olive="owner", ann="owner", dev="developer")
    create_user(store, "new@example.com", PASSWORD)
    with pytest.raises(OwnerOnly):
        assign_role(store, "payments", email, role, by="admin")
    with pytest.raises(OwnerOnly):
        remove_member(store, "payments", "olive@example.com", by="admin")
    assert assign_role(store, "payments", "dev@example.com", "viewer", by="admin") == "developer"
    assert remove_member(store, "payments", "dev@example.com", by="admin") == "viewer"


def _demote_both_at_once(store: Store, emails: tuple[str, str]) -> list[str]:
    """Demote the two owners from two threads released together; what each got."""
    start = threading.Barrier(2, timeout=30)
    outcomes: list[str] = []

    def demote(email: str) -> None:
        start.wait()
        try:
            assign_role(store, "payments", email, "developer", by="owner")
            outcomes.append("demoted")
        except LastOwner:
            outcomes.append("refused")

    threads = [threading.Thread(target=demote, args=(email,)) for email in emails]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return sorted(outcomes)


def test_two_owners_demoting_each_other_at_once_leave_one_owner(store: Store) -> None:
    """The team's row is locked before the owners are counted: the second demotion
    counts after the first is committed, and is refused."""
    _team(store, olive="owner", ann="owner")
    for _ in range(5):
        outcomes = _demote_both_at_once(store, ("olive@example.com", "ann@example.com"))
        assert outcomes == ["demoted", "refused"]
        owners = [m.email for m in team_members(store, "payments") if m.role == "owner"]
        assert len(owners) == 1
        for found in team_members(store, "payments"):  # both owners again, next round
            assign_role(store, "payments", found.email, "owner", by="owner")
