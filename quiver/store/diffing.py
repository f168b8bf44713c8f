"""What changes between two declaration documents, entity by entity.

An entity is a target, route or consumer (by name, with its plugins and
credentials), a global plugin (by name), or a top-level section such as
``limits`` (by key).  An entity is changed when its document or its place in its
list differs.  Pure functions on plain data: the store, ``quiver diff`` and the
admin API share them.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Kind = Literal["section", "target", "route", "consumer", "api", "plugin"]
LISTS: tuple[tuple[Kind, str], ...] = (
    ("target", "targets"),
    ("route", "routes"),
    ("consumer", "consumers"),
    ("api", "apis"),
)
_LISTED = ("targets", "routes", "consumers", "apis", "plugins")


class Change(TypedDict, total=False):
    kind: Kind
    name: str
    before: Any  # absent for an added entity
    after: Any  # absent for a removed entity
    position: list[int]  # [before, after], only when the entity moved in its list


class Diff(TypedDict):
    added: list[Change]
    changed: list[Change]
    removed: list[Change]


Entities = dict[tuple[Kind, str], tuple[int, Any]]


def entities(document: dict[str, Any]) -> Entities:
    """Every entity of ``document`` with its position (0 for what is not in a list)."""
    found: Entities = {}
    for key, value in document.items():
        if key not in _LISTED:
            found["section", key] = (0, value)
    for kind, key in LISTS:
        for position, item in enumerate(document.get(key, [])):
            found[kind, item["name"]] = (position, item)
    for name, config in document.get("plugins", {}).items():
        found["plugin", name] = (0, config)
    for key in _LISTED:
        if key in document and not document[key]:  # written empty: tell it from left out
            found["section", key] = (0, document[key])
    return found


def diff(before: dict[str, Any], after: dict[str, Any]) -> Diff:
    """The changes that turn ``before`` into ``after``, in a stable order."""
    old, new = entities(before), entities(after)
    result = Diff(added=[], changed=[], removed=[])
    for key in sorted(new.keys() - old.keys()):
        result["added"].append(Change(kind=key[0], name=key[1], after=new[key][1]))
    for key in sorted(old.keys() - new.keys()):
        result["removed"].append(Change(kind=key[0], name=key[1], before=old[key][1]))
    for key in sorted(old.keys() & new.keys()):
        (was_at, was), (now_at, now) = old[key], new[key]
        if was != now or was_at != now_at:
            change = Change(kind=key[0], name=key[1], before=was, after=now)
            if was_at != now_at:
                change["position"] = [was_at, now_at]
            result["changed"].append(change)
    return result


def is_empty(changes: Diff) -> bool:
    return not (changes["added"] or changes["changed"] or changes["removed"])
