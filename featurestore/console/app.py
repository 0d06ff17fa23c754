"""The console's ASGI application: five read-only pages and their assets.

    /                           Overview: versions, stores, freshness, warnings
    /registry                   every definition, with a search box
    /lineage                    source → view → feature → request view → service, as SVG
    /features/{view}/{feature}  one feature: definition, kernel, runs, value plots
    /runs                       materializations, pushes per hour, verify and replay
    /assets/...                 CSS, script and icon, from this package

Links are written relative to where the app is mounted (the ASGI root path), so the same
app serves `featurestore ui` at / and `featurestore serve --ui` at /ui.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException

from featurestore.catalog import Catalog
from featurestore.console.feature_page import build_feature_page
from featurestore.console.feature_plots import distribution_plot, trend_plots
from featurestore.console.followed_store import Followed, FollowedStore
from featurestore.console.lineage import LineageGraph, LineageNode, build_lineage
from featurestore.console.lineage_svg import render_lineage_svg
from featurestore.console.overview import build_overview
from featurestore.console.registry_page import anchor, build_registry_page
from featurestore.console.runs_page import build_runs_page
from featurestore.console.templating import environment
from featurestore.errors import FeatureStoreError, InputError, StoreLockedError

PAGES = (("/", "Overview"), ("/registry", "Registry"), ("/lineage", "Lineage"),
         ("/runs", "Runs"))
"""The navigation bar: path and label."""


def create_console_app(registry: str | Path) -> FastAPI:
    """The console for the registry file `registry` (or a folder holding registry.yaml),
    following edits to the file.

    Raises:
        RegistryError: the registry does not load.
    """
    followed = FollowedStore(registry)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Runs when the console is the server's app; an app that mounts it closes
        # `app.state.followed` itself (mounted apps get no lifespan events).
        try:
            yield
        finally:
            followed.close()

    app = FastAPI(title="featurestore console", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.followed = followed
    app.mount("/assets", StaticFiles(packages=[("featurestore.console", "assets")]),
              name="console-assets")

    def page(path: str, builder: Callable[..., tuple[str, dict[str, Any]]]) -> None:
        # A plain function: FastAPI runs it in its thread pool, since reads block.
        def handler(request: Request) -> Response:
            return _render(request, followed.current(), builder, request.path_params)

        app.add_api_route(path, handler, methods=["GET"], response_class=HTMLResponse,
                          include_in_schema=False)

    page("/", _overview)
    page("/registry", _registry)
    page("/lineage", _lineage)
    page("/runs", _runs)
    page("/features/{view}/{feature}", _feature)

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, error: StarletteHTTPException) -> Response:
        message = ("no page here: the console has the overview, registry, lineage, "
                   "runs and one page per feature" if error.status_code == 404
                   else str(error.detail))
        return _error_page(request, followed.current(), error.status_code, "Not found"
                           if error.status_code == 404 else "Cannot show this page", message)

    return app


def _render(request: Request, followed: Followed,
            builder: Callable[..., tuple[str, dict[str, Any]]],
            arguments: dict[str, str]) -> Response:
    started = time.perf_counter()
    _compile(followed)
    try:
        # One read-only connection for all the page's reads of the offline file.
        with followed.store.offline_database().reading():
            template, values = builder(followed, _root(request), **arguments)
    except InputError as error:
        return _error_page(request, followed, 404, "Not found", str(error))
    except StoreLockedError as error:
        return _error_page(request, followed, 503, "The offline file is busy",
                           f"{error}; reload in a moment")
    except FeatureStoreError as error:
        return _error_page(request, followed, 503, "Cannot read the feature store", str(error))
    html = environment().get_template(template).render(
        **_common(request, followed, started), **values)
    return HTMLResponse(html)


def _common(request: Request, followed: Followed, started: float) -> dict[str, Any]:
    return {"project": followed.store.registry.project,
            "root": _root(request),
            "pages": PAGES, "current": request.scope["path"][
                len(request.scope.get("root_path", "")):] or "/",
            "rendered_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "render_ms": (time.perf_counter() - started) * 1000}


def _compile(followed: Followed) -> None:
    """Compile (or load) the kernels before the page's read-only block: compiling reads
    source schemas on a connection of its own. Kept after the first success; a failure
    is shown by the page (the catalog says why types are unknown)."""
    with contextlib.suppress(FeatureStoreError):
        followed.store.kernels()


def _root(request: Request) -> str:
    """The path the console is mounted at ("" or "/ui"): every link starts with it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _error_page(request: Request, followed: Followed, status: int, heading: str,
                message: str) -> Response:
    html = environment().get_template("error.html").render(
        **_common(request, followed, time.perf_counter()), heading=heading, message=message)
    return HTMLResponse(html, status_code=status)


def _overview(followed: Followed, root: str) -> tuple[str, dict[str, Any]]:
    store = followed.store
    return "overview.html", {"overview": build_overview(store, store.catalog(),
                                                        followed.problems)}


def _registry(followed: Followed, root: str) -> tuple[str, dict[str, Any]]:
    store = followed.store
    return "registry.html", {"sections": build_registry_page(store, store.catalog(),
                                                             _schemas(followed))}


def _lineage(followed: Followed, root: str) -> tuple[str, dict[str, Any]]:
    graph = _lineage_graph(followed.store.catalog())
    return "lineage.html", {
        "svg": Markup(render_lineage_svg(graph, lambda node: node_link(node, root))),
        "has_transforms": any(node.kind == "transform" for node in graph.nodes)}


def _lineage_graph(catalog: Catalog) -> LineageGraph:
    return build_lineage(catalog.registry, catalog.fits, catalog.pinned)


def _runs(followed: Followed, root: str) -> tuple[str, dict[str, Any]]:
    return "runs.html", {"runs": build_runs_page(followed.store)}


def _feature(followed: Followed, root: str, view: str,
             feature: str) -> tuple[str, dict[str, Any]]:
    store = followed.store
    catalog = store.catalog()
    page = build_feature_page(store, catalog, view, feature)
    kind = "feature" if page.kind == "feature" else "request_view"
    node = f"{kind}:{view}:{feature}" if kind == "feature" else f"request_view:{view}"
    svg = render_lineage_svg(_lineage_graph(catalog).neighbourhood(node),
                             lambda n: node_link(n, root), highlight=node)
    view_kind = "view" if page.kind == "feature" else "request view"
    return "feature.html", {"page": page, "lineage_svg": Markup(svg),
                            "view_anchor": anchor(view_kind, view),
                            "distribution": distribution_plot(page),
                            "trends": trend_plots(page)}


def _schemas(followed: Followed) -> dict[str, tuple[tuple[str, str], ...]] | None:
    try:
        kernels = followed.store.kernels()
    except FeatureStoreError:
        return None  # the catalog says why the types are unknown
    return {source: tuple((column, str(kind)) for column, kind in columns)
            for source, columns in kernels.graph.spec.schemas}


def node_link(node: LineageNode, root: str) -> str:
    """The page of a lineage node: a feature's own page, or the definition's card on
    the Registry page (a transform's is its service's)."""
    if node.kind == "feature":
        view, feature = node.name.split(":", 1)
        return f"{root}/features/{quote(view, safe='')}/{quote(feature, safe='')}"
    if node.kind == "transform":
        return f"{root}/registry#{anchor('service', node.name.split(':', 1)[0])}"
    kind = {"request_view": "request view"}.get(node.kind, node.kind)
    return f"{root}/registry#{anchor(kind, node.name)}"
