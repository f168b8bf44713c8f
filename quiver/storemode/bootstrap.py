"""What a node does to a store on first start: the demo declaration and a token.

A store without any revision gets the declaration ``quiver serve`` has always
served without a config (every path to the built-in demo target) as revision 1,
authored ``quiver``, so ``curl http://127.0.0.1:8080/hello`` answers on the first
start.  A store without any admin token gets one: ``QUIVER_ADMIN_TOKEN`` when it is
set, else a new random one that the caller prints once (only its hash is kept).
Several nodes starting on one new store at once take turns on the store's head
row, so there is one demo revision and one token.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quiver.demo import demo_declaration
from quiver.store import Store
from quiver.store.engine import WRITE
from quiver.store.models import AdminToken, Head
from quiver.store.secrets import hash_admin_token, new_admin_token

AUTHOR = "quiver"
TOKEN_NAME = "admin"


def seed_demo(store: Store) -> bool:
    """Make the demo declaration revision 1 of an empty store; whether it did."""
    if store.head() != 0:
        return False
    revision = store.apply(demo_declaration(), author=AUTHOR, message="the built-in demo target")
    return revision is not None and revision.number == 1


def ensure_admin_token(store: Store, seed: str | None) -> str | None:
    """Give a store without admin tokens one named ``admin`` (role admin): ``seed``
    (QUIVER_ADMIN_TOKEN) when set, else a new one, returned to be shown once.  None
    when the store had a token already or ``seed`` was used."""
    engine = store.engine.execution_options(**{WRITE: True})
    with Session(engine) as session, session.begin():
        session.scalars(select(Head).with_for_update()).one()  # (nodes take turns)
        if session.scalar(select(func.count()).select_from(AdminToken)):
            return None
        token = seed or new_admin_token()
        session.add(
            AdminToken(
                name=TOKEN_NAME,
                token_hash=hash_admin_token(token),
                role="admin",
                team_id=None,
                created_at=datetime.now(UTC),
            )
        )
    return None if seed else token
