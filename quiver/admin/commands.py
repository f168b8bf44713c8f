"""``quiver admin token new|list|revoke``: admin API tokens, on the store itself.

They work on the store directly (``--store``, the file or URL ``quiver serve`` was
given), not through the admin API: they are how an operator on the machine makes
the first tokens of a team, or a new admin token when the one printed at first
start is lost.  A new token is printed once; the store keeps only its hash.
"""

from __future__ import annotations

import argparse
import sys

DEFAULT_STORE = "quiver.db"
ROLES = ("admin", "editor", "viewer")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = commands.add_parser(
        "admin",
        help="manage the admin API's tokens",
        description="Manage the tokens of the admin API, on the store directly.",
    )
    parts = admin.add_subparsers(dest="part", metavar="PART", required=True)
    token = parts.add_parser(
        "token", help="make, list or revoke tokens", description="Admin API tokens."
    )
    actions = token.add_subparsers(dest="action", metavar="ACTION", required=True)

    new = actions.add_parser(
        "new",
        help="make a token and print it once",
        description="Make a token; it is printed once and only its SHA-256 is kept.",
    )
    new.add_argument(
        "name",
        nargs="?",
        help="what revisions call the token's changes, e.g. ci-deploy (default: the role "
        "and a random suffix)",
    )
    new.add_argument("--role", choices=ROLES, default="editor", help="default: editor")
    new.add_argument("--team", metavar="T", help="scope the token to one team")
    _store_option(new)
    new.set_defaults(handler=_new)

    listing = actions.add_parser("list", help="list the tokens (never the tokens themselves)")
    _store_option(listing)
    listing.set_defaults(handler=_list)

    revoke = actions.add_parser("revoke", help="revoke a token by name")
    revoke.add_argument("name")
    _store_option(revoke)
    revoke.set_defaults(handler=_revoke)


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        default=DEFAULT_STORE,
        help=f"the store: a SQLite file or postgresql:// URL (default ./{DEFAULT_STORE})",
    )


def _new(args: argparse.Namespace) -> int:
    import secrets

    from quiver.errors import StoreError
    from quiver.store import open_store
    from quiver.store.tokens import create_token

    name = args.name or f"{args.role}-{secrets.token_hex(3)}"
    store = open_store(args.store)
    try:
        info, token = create_token(store, name, args.role, args.team)
    except StoreError as exc:
        print(f"quiver: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    scope = f", team {info.team}" if info.team else ""
    print(f"token {info.name} ({info.role}{scope}); shown once, keep it:", file=sys.stderr)
    print(token)
    return 0


def _list(args: argparse.Namespace) -> int:
    from quiver.store import open_store
    from quiver.store.tokens import list_tokens

    store = open_store(args.store)
    try:
        tokens = list_tokens(store)
    finally:
        store.close()
    rows = [("NAME", "ROLE", "TEAM", "CREATED")]
    rows += [
        (t.name, t.role, t.team or "-", t.created_at.strftime("%Y-%m-%d %H:%M:%SZ")) for t in tokens
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + row[3]
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from quiver.store import open_store
    from quiver.store.tokens import revoke_token

    store = open_store(args.store)
    try:
        found = revoke_token(store, args.name)
    finally:
        store.close()
    if not found:
        print(f"quiver: there is no token named {args.name!r}", file=sys.stderr)
        return 1
    print(f"token {args.name} revoked")
    return 0
