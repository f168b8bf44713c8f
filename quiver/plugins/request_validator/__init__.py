"""``request-validator``: refuse requests that do not match JSON Schemas or an OpenAPI document.

The package keeps the plugin (``handler``) apart from its settings (``config``), the
OpenAPI document (``openapi``: reading; ``operations``: compiling into checks;
``matching``: finding a request's operation), the checks of parameters and bodies
(``checks``, reading parameter text in ``params``), schema compilation and the
wording of violations (``schemas``, ``formats``) and the answers it gives
(``problems``).
"""

from quiver.plugins.request_validator.config import RequestValidatorConfig
from quiver.plugins.request_validator.handler import RequestValidator

__all__ = ["RequestValidator", "RequestValidatorConfig"]
