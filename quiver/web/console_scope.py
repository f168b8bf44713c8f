"""Whose calls a console page shows, and over which window.

The console's pages read the call log as a token would: a person who sees every
team (``who.everywhere`` set) sees every team's calls, or one team's chosen with
``?team=``; anybody else sees one of their teams at a time, their first unless they
choose another.  A team they may not see is "not found", like one that does not
exist, so that the page never shows its data nor tells that it exists::

    scope = team_scope(who, team)        # PageNotFound for a team not theirs
    analytics.get_top(request, scope.team, "consumers", 10, None, None)
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from quiver.web.errors import PageNotFound
from quiver.web.identity import SignedIn


@dataclass(frozen=True)
class TeamScope:
    """The team whose calls a page shows, and the teams it may show instead."""

    team: str | None  # None: every team's calls
    teams: list[str]  # what the person may narrow it to
    everything: bool  # whether they may see every team's calls at once

    def query(self, **more: str) -> str:
        """The page's query string (without ``page``), to keep it in links."""
        chosen = {"team": self.team or "", **more}
        return urlencode({name: value for name, value in chosen.items() if value})


def team_scope(who: SignedIn, team: str) -> TeamScope:
    """The team ``who`` asked for (``""``: the default), when they may see it."""
    teams = [name for name, _ in who.team_roles()]
    everything = who.everywhere is not None
    chosen: str | None = team or None
    if chosen is not None and chosen not in teams:
        raise PageNotFound(f"There is no team {chosen!r}.")
    if chosen is None and not everything:
        chosen = teams[0] if teams else ""  # ("": a team with no calls)
    return TeamScope(chosen, teams, everything)
