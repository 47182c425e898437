"""/docs (Swagger UI) and /redoc with their scripts, styles and favicon served by the
app itself, so that the API docs work in an air-gapped cluster: FastAPI's own pages
load them from a CDN.

The assets are the ones the `fastapi-offline` package ships (Swagger UI 5, Redoc 2 and a
favicon; MIT, the bundles keep their own licence headers); driftmon uses its files only,
not its app factory. Every path here is open like /docs itself (auth.OPEN_PATHS): they
hold no data."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

ASSETS_DIRECTORY = Path(fastapi_offline.__file__).parent / "static"
SWAGGER_JS = "/docs/swagger-ui-bundle.js"
SWAGGER_CSS = "/docs/swagger-ui.css"
FAVICON = "/docs/favicon.png"
REDOC_JS = "/redoc/redoc.standalone.js"
# served path: file in ASSETS_DIRECTORY
ASSETS = {
    SWAGGER_JS: "swagger-ui-bundle.js",
    SWAGGER_CSS: "swagger-ui.css",
    FAVICON: "favicon.png",
    REDOC_JS: "redoc.standalone.js",
}
DOCS_PAGE = "/docs"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
REDOC_PAGE = "/redoc"
# the assets change only with the package: a day in a browser's cache saves a megabyte
ASSET_CACHE_CONTROL = "public, max-age=86400"

router = APIRouter(include_in_schema=False)


def _prefix(request: Request) -> str:
    """Where the app is mounted (a proxy's root_path), so links work behind one."""
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get(DOCS_PAGE)
async def swagger_ui(request: Request) -> HTMLResponse:
    root = _prefix(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
        swagger_js_url=f"{root}{SWAGGER_JS}",
        swagger_css_url=f"{root}{SWAGGER_CSS}",
        swagger_favicon_url=f"{root}{FAVICON}",
        # Swagger UI would otherwise ask validator.swagger.io to check the schema
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get(OAUTH2_REDIRECT)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC_PAGE)
async def redoc(request: Request) -> HTMLResponse:
    root = _prefix(request)
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{REDOC_JS}",
        redoc_favicon_url=f"{root}{FAVICON}",
        with_google_fonts=False,
    )


def _asset(filename: str) -> FileResponse:
    return FileResponse(ASSETS_DIRECTORY / filename, headers={"Cache-Control": ASSET_CACHE_CONTROL})


@router.get(SWAGGER_JS)
async def swagger_js() -> FileResponse:
    return _asset(ASSETS[SWAGGER_JS])


@router.get(SWAGGER_CSS)
async def swagger_css() -> FileResponse:
    return _asset(ASSETS[SWAGGER_CSS])


@router.get(FAVICON)
async def favicon() -> FileResponse:
    return _asset(ASSETS[FAVICON])


@router.get(REDOC_JS)
async def redoc_js() -> FileResponse:
    return _asset(ASSETS[REDOC_JS])
