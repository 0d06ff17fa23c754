"""The /docs page, served with no internet: Swagger UI from an installed package.

FastAPI's default /docs page loads Swagger UI's script and style sheet from a CDN, so a
server without internet access (a private network, an air-gapped cluster) shows a blank
page. The `swagger-ui-bundle-v2` package ships Swagger UI's files (version 5, which reads
the OpenAPI 3.1 documents FastAPI writes); they are served under /docs-assets.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs-assets"


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI for the app's OpenAPI document at /docs, from local files.

    The app must be built with ``docs_url=None, redoc_url=None`` (no CDN pages).
    """
    app.mount(ASSETS_PATH, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        # Relative to where the app is mounted, so a proxy's path prefix keeps working.
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
            # No badge from Swagger's online validator: it would send it the document.
            swagger_ui_parameters={"validatorUrl": None},
        )
