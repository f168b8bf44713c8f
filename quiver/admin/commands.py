"""``quiver admin token new|list|revoke`` and ``quiver admin user new|list``: admin API
tokens and platform admin users, on the store itself.

They work on the store directly (``--store``, the file or URL ``quiver serve`` was
given), not through the admin API: they are how an operator on the machine makes
the first tokens of a team, a new admin token when the one printed at first start
is lost, or the first user who signs in to the console.  A new token is printed
once; the store keeps only its hash, and only the scrypt hash of a password.
"""

from __future__ import annotations

import argparse
import sys

DEFAULT_STORE = "quiver.db"
ROLES = ("admin", "editor", "viewer")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = commands.add_parser(
        "admin",
        help="manage the admin API's tokens and the console's admin users",
        description="Manage the tokens of the admin API and the platform admin users of "
        "the console, on the store directly.",
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
    _add_user_commands(parts)


def _add_user_commands(parts: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = parts.add_parser(
        "user",
        help="make or list platform admin users (console sign-in)",
        description="Users who sign in to the console (http://127.0.0.1:8081/console).",
    )
    actions = user.add_subparsers(dest="action", metavar="ACTION", required=True)
    new = actions.add_parser(
        "new",
        help="make a platform admin user",
        description="Make a platform admin user: they sign in to the console with this "
        "email and password and may act on every team.  The password is asked twice "
        "(or read from standard input with --password-stdin) and only its scrypt hash "
        "is kept.",
    )
    new.add_argument("email", metavar="EMAIL")
    new.add_argument("--name", metavar="NAME", default="", help="the name the console shows")
    new.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (for scripts)",
    )
    _store_option(new)
    new.set_defaults(handler=_new_user)

    listing = actions.add_parser("list", help="list the users (never their passwords)")
    _store_option(listing)
    listing.set_defaults(handler=_list_users)


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


def _new_user(args: argparse.Namespace) -> int:
    from quiver.accounts.passwords import check_password
    from quiver.accounts.users import create_user, normalize_email
    from quiver.errors import AccountError
    from quiver.store import open_store

    try:
        email = normalize_email(args.email)
        password = _read_password(args.password_stdin)
        check_password(password)
    except AccountError as exc:
        print(f"quiver: {exc}", file=sys.stderr)
        return 1
    store = open_store(args.store)
    try:
        user = create_user(store, email, password, name=args.name, is_admin=True)
    except AccountError as exc:
        print(f"quiver: {email}: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"user {user.email} made (platform admin); sign in at /console")
    return 0


def _read_password(from_stdin: bool) -> str:
    """The new password: stdin's first line, or asked twice on the terminal."""
    import getpass

    from quiver.errors import AccountError

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password (at least 12 characters): ")
    if getpass.getpass("Password again: ") != first:
        raise AccountError("the two passwords differ; nothing was made")
    return first


def _list_users(args: argparse.Namespace) -> int:
    from quiver.accounts.memberships import memberships_of
    from quiver.accounts.users import list_users
    from quiver.store import open_store

    store = open_store(args.store)
    try:
        users = [(user, memberships_of(store, user.id)) for user in list_users(store)]
    finally:
        store.close()
    rows = [("EMAIL", "NAME", "ADMIN", "STATE", "TEAMS", "CREATED")]
    for user, teams in users:
        rows.append(
            (
                user.email,
                user.display_name or "-",
                "yes" if user.is_admin else "no",
                "disabled" if user.disabled else "active",
                ",".join(f"{team}:{role}" for team, role in teams.items()) or "-",
                user.created_at.strftime("%Y-%m-%d %H:%M:%SZ"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + row[5]
        )
    return 0
