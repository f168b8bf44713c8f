"""``quiver dump``, ``diff``, ``apply`` and ``rollback``: files against the admin API.

``apply`` and ``diff`` send the file as written (``${VAR}`` substituted) and let the
admin API validate it, so the messages are the ones ``quiver check`` prints; the
issues it answers are placed back on the file's lines.  The settings of the gateway
process (``listen``, ``workers``, ...) are not part of a declaration: a file that also
serves ``quiver serve -c`` has them left out, with a note.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quiver.declarative import DEFAULT_ADMIN, TOKEN_VARIABLE

if TYPE_CHECKING:  # the rest is imported when a command runs: `quiver --help` stays light
    from quiver.config.document import Document
    from quiver.declarative.client import AdminClient, AdminError

#: ``quiver diff`` exit codes: same, different, could not tell
EQUAL, DIFFERENT, TROUBLE = 0, 1, 2


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dump = commands.add_parser(
        "dump",
        help="print a team's declaration from the admin API as YAML",
        description="Print the declaration the admin API holds for a team, in the format "
        "of quiver.yaml (keys and passwords as their hashes, never in clear).",
    )
    dump.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    _common(dump)
    dump.set_defaults(handler=run_dump)

    diff = commands.add_parser(
        "diff",
        help="show what `quiver apply` of a file would change",
        description="Show, entity by entity, what applying the file would change. Exit code "
        "0 when the admin API holds the same declaration, 1 when it differs, 2 on error.",
    )
    _file(diff)
    _common(diff)
    diff.set_defaults(handler=run_diff)

    apply = commands.add_parser(
        "apply",
        help="make a file the team's declaration, in one revision",
        description="Send the file to the admin API, which validates it and applies it in "
        "one transaction: all of it as a single new revision, or nothing.",
    )
    _file(apply)
    apply.add_argument("-m", "--message", default="", help="why: kept with the revision")
    _common(apply)
    apply.set_defaults(handler=run_apply)

    rollback = commands.add_parser(
        "rollback",
        help="restore the state a revision left, as a new revision",
        description="Restore the declaration revision REV left its team with; the "
        "restoring is itself a new revision.",
    )
    rollback.add_argument("revision", metavar="REV", type=int, help="the revision to restore")
    rollback.add_argument("-m", "--message", help="why: kept with the new revision")
    _common(rollback, team=False)
    rollback.set_defaults(handler=run_rollback)

    from quiver.declarative.logs import add_logs_command

    add_logs_command(commands)
    logs = commands.choices["logs"]
    _common(logs)
    logs.set_defaults(handler=run_logs)


def _file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", metavar="FILE", required=True, help="the declaration (YAML or JSON)"
    )


def _common(parser: argparse.ArgumentParser, *, team: bool = True) -> None:
    parser.add_argument(
        "--admin",
        metavar="URL",
        default=DEFAULT_ADMIN,
        help=f"the admin API (default {DEFAULT_ADMIN}); the token is read from ${TOKEN_VARIABLE}",
    )
    if team:
        parser.add_argument("--team", metavar="T", help="the team (default: default)")


def _client(args: argparse.Namespace) -> AdminClient:
    from quiver.declarative.client import AdminClient

    return AdminClient.from_environment(args.admin, getattr(args, "team", None))


def run_logs(args: argparse.Namespace) -> int:
    from quiver.declarative.logs import run_logs as logs

    with _client(args) as client:
        return logs(args, client)


def run_dump(args: argparse.Namespace) -> int:
    from quiver.declarative.client import AdminError
    from quiver.declarative.render import as_yaml

    try:
        with _client(args) as client:
            answer = client.config()
    except AdminError as exc:
        return _failed(exc)
    text = f"# quiver dump: team {answer['team']}, revision {answer['revision']}\n"
    text += as_yaml(answer["document"]) if answer["document"] else ""
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def run_diff(args: argparse.Namespace) -> int:
    from quiver.declarative.client import AdminError
    from quiver.declarative.render import diff_lines
    from quiver.errors import ConfigError

    try:
        document = _declaration(args.config)
    except ConfigError as exc:
        for issue in exc.issues:
            print(f"quiver: {issue}", file=sys.stderr)
        return TROUBLE
    try:
        with _client(args) as client:
            answer = client.diff(document.data)
    except AdminError as exc:
        _failed(exc, document)
        return TROUBLE
    for line in diff_lines(answer["diff"]):
        print(line)
    return EQUAL if answer["equal"] else DIFFERENT


def run_apply(args: argparse.Namespace) -> int:
    from quiver.declarative.client import AdminError
    from quiver.declarative.render import diff_lines

    document = _declaration(args.config)  # (a ConfigError is printed by the CLI's main)
    try:
        with _client(args) as client:
            answer = client.apply(document.data, args.message)
    except AdminError as exc:
        return _failed(exc, document)
    for line in diff_lines(answer["diff"]):
        print(line)
    revision = answer.get("revision")
    if revision is not None:
        print(f"revision {revision['number']} applied")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    from quiver.declarative.client import AdminError

    try:
        with _client(args) as client:
            answer = client.rollback(args.revision, args.message)
    except AdminError as exc:
        return _failed(exc)
    revision = answer.get("revision")
    if revision is None:
        print(f"nothing to restore: the team is as revision {args.revision} left it")
    else:
        print(f"revision {revision['number']} restores revision {args.revision}")
    return 0


def _declaration(path: str) -> Document:
    from quiver.config.document import read_document
    from quiver.config.models import Settings

    document = read_document(path)
    settings = [key for key in document.data if key in Settings.model_fields]
    for key in settings:
        del document.data[key]
    if settings:
        names = ", ".join(settings)
        print(f"quiver: note: {names} left out (settings of `quiver serve`)", file=sys.stderr)
    return document


def _failed(error: AdminError, document: Document | None = None) -> int:
    """Say why the admin API refused; an invalid declaration as ``quiver check`` does."""
    issues = _issues(error.problem)
    if issues:
        print(f"quiver: invalid config ({len(issues)} problem(s)):", file=sys.stderr)
    else:
        print(f"quiver: {error}", file=sys.stderr)
    for issue in issues:
        location = issue.get("location") or ""
        where = ""
        if document is not None:
            line = document.line_of(location)
            where = f"{document.source}:{line}: " if line else f"{document.source}: "
        print(
            f"  {where}{location + ': ' if location else ''}{issue.get('detail', '')}",
            file=sys.stderr,
        )
    return 1


def _issues(problem: dict[str, Any]) -> list[dict[str, Any]]:
    errors = problem.get("errors")
    return [item for item in errors if isinstance(item, dict)] if isinstance(errors, list) else []
