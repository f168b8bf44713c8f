"""Quiver: API gateway, AI gateway and API platform."""

__version__ = "0.1.0"
