"""The async client, the source of the sync one (see scripts/unasync.py)."""
