"""``api-product``: what an API product asks of the routes it is made of (its
lifecycle state and its plans).  Put on a route by the data plane, never written."""

from quiver.plugins.products.handler import ApiProduct

__all__ = ["ApiProduct"]
