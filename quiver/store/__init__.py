"""The config store of the control plane: each team's declaration as entities, changed
by applies that leave numbered revisions.  The proxy and plugins never import it."""

from quiver.store import accounttables as accounttables  # registers the account tables
from quiver.store import calltables as calltables  # and the call log tables
from quiver.store import spendtables as spendtables  # and the AI spend tables
from quiver.store import subscriptions as subscriptions  # and subscription requests
from quiver.store import webhooktables as webhooktables  # and the webhook queue
from quiver.store.diffing import Change, Diff
from quiver.store.repository import Current, Edit, Revision, Store, UnknownTeam, open_store

__all__ = ["Change", "Current", "Diff", "Edit", "Revision", "Store", "UnknownTeam", "open_store"]
