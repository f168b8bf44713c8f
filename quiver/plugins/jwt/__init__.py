"""``jwt``: identify the caller by a JSON Web Token (RFC 7519) in a header, cookie or query.

The package keeps the plugin (``handler``) apart from its settings (``config``), the
keys that verify tokens (``keys``), the JWK Set cache (``jwks``, fetched with the
worker's outbound client), the tokens verified lately (``verified``) and finding the
token in a request (``tokens``).
"""

from quiver.plugins.jwt.config import JwtConfig
from quiver.plugins.jwt.handler import Jwt

__all__ = ["Jwt", "JwtConfig"]
