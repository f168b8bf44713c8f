"""The console's navigation, shared by its page modules (``console_*.py``)."""

from __future__ import annotations

from quiver.web.pages import NavItem

NAV: tuple[NavItem, ...] = (
    NavItem("Overview", "/console"),
    NavItem("Routes", "/console/routes"),
    NavItem("Targets", "/console/targets"),
    NavItem("Subscriptions", "/console/subscriptions"),
    NavItem("Revisions", "/console/revisions"),
    NavItem("Errors", "/console/errors"),
    NavItem("Consumers", "/console/consumers"),
    NavItem("AI spend", "/console/spend"),
    NavItem("Teams", "/console/teams"),
)
