"""No key or password is ever in the database in clear, in any row of any table."""

from __future__ import annotations

from sqlalchemy import insert, select

from quiver.store import Store
from quiver.store.models import AdminToken, Base
from quiver.store.secrets import admin_token_matches, hash_admin_token, new_admin_token
from tests.store.documents import ALICE_KEY, BOB_PASSWORD, everything, sha256_hash


def all_rows(store: Store) -> str:
    """Every value of every table, as text."""
    with store.engine.connect() as connection:
        return "\n".join(
            repr(row)
            for table in Base.metadata.sorted_tables
            for row in connection.execute(select(table))
        )


def test_keys_and_passwords_are_stored_hashed_only(store: Store) -> None:
    store.apply(everything(), author="test")
    changed = everything()
    changed["consumers"][0]["groups"] = ["staff", "ops"]
    store.apply(changed, author="test")
    rows = all_rows(store)
    assert ALICE_KEY not in rows and BOB_PASSWORD not in rows
    assert sha256_hash(ALICE_KEY) in rows
    assert "scrypt$16384$8$1$" in rows
    assert ALICE_KEY not in repr(store.revisions()) and BOB_PASSWORD not in repr(store.revisions())


def test_admin_tokens_are_stored_as_their_hash(store: Store) -> None:
    token = new_admin_token()
    with store.engine.begin() as connection:
        connection.execute(
            insert(AdminToken).values(name="ci", token_hash=hash_admin_token(token), role="editor")
        )
    rows = all_rows(store)
    assert token not in rows
    with store.engine.connect() as connection:
        stored = connection.execute(select(AdminToken.token_hash)).scalar_one()
    assert admin_token_matches(stored, token)
    assert not admin_token_matches(stored, token + "x")
    assert not admin_token_matches(stored, new_admin_token())
