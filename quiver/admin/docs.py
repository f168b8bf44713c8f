"""``/docs``: Swagger UI over ``/openapi.json``, served entirely from this process.

The assets come from the installed ``swagger-ui-bundle`` package under
``/docs/static``, never from a CDN, so the page works on a machine without
internet access.  That package ships Swagger UI 4, which renders OpenAPI 3.0 but
refuses a document that says 3.1; the page therefore fetches ``/openapi.json``
(3.1) and hands it to Swagger UI labelled 3.0.3, which it renders well enough
for reading and trying the API.  ``/openapi.json`` itself stays 3.1.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

STATIC = "/docs/static"

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Quiver admin API</title>
<link rel="stylesheet" href="{static}/swagger-ui.css">
<link rel="icon" type="image/png" href="{static}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{static}/swagger-ui-bundle.js"></script>
<script>
fetch("/openapi.json").then(function (answer) {{ return answer.json(); }}).then(function (spec) {{
  spec.openapi = "3.0.3";
  window.ui = SwaggerUIBundle({{
    spec: spec,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
  }});
}});
</script>
</body>
</html>
"""

api = APIRouter(include_in_schema=False)


@api.get("/docs")
def docs_page() -> Response:
    return HTMLResponse(_PAGE.format(static=STATIC))


def mount_docs(app: FastAPI) -> None:
    app.include_router(api)
    app.mount(STATIC, StaticFiles(directory=str(swagger_ui_path)), name="docs-static")
