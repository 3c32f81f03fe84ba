"""API documentation pages, /docs (Swagger UI) and /redoc (ReDoc), served from this
machine: the scripts and styles come from the installed fastapi-offline package, never a CDN,
and the pages start their viewer from a same-origin script, so their CSP allows only 'self'."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api.service.problems import NOT_FOUND, ProblemError

router = APIRouter(include_in_schema=False)

# Everything from this origin only; images may also be data: URLs (the viewers' icons).
DOCS_CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
}
_STATIC = files("fastapi_offline") / "static"
_CACHE = "public, max-age=86400"

_SWAGGER_INIT = """\
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
"""
_REDOC_INIT = """\
window.addEventListener("load", function () {
  Redoc.init("/openapi.json", { hideDownloadButton: false }, document.getElementById("redoc"));
});
"""
_INIT = {"swagger-init.js": _SWAGGER_INIT, "redoc-init.js": _REDOC_INIT}


def _page(title: str, head: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title>{head}</head><body>{body}</body></html>\n"
    )


SWAGGER_HTML = _page(
    "Commitment Ledger API - Swagger UI",
    '<link rel="stylesheet" href="/docs/assets/swagger-ui.css">',
    '<div id="swagger-ui"></div>'
    '<script src="/docs/assets/swagger-ui-bundle.js"></script>'
    '<script src="/docs/assets/swagger-init.js"></script>',
)
REDOC_HTML = _page(
    "Commitment Ledger API - ReDoc",
    "",
    '<div id="redoc"></div>'
    '<script src="/docs/assets/redoc.standalone.js"></script>'
    '<script src="/docs/assets/redoc-init.js"></script>',
)


def _html(text: str) -> HTMLResponse:
    return HTMLResponse(text, headers={"Content-Security-Policy": DOCS_CSP})


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    """Swagger UI over /openapi.json."""
    return _html(SWAGGER_HTML)


@router.get("/redoc")
def redoc() -> HTMLResponse:
    """ReDoc over /openapi.json."""
    return _html(REDOC_HTML)


@router.get("/docs/assets/{name}")
def docs_asset(name: str) -> Response:
    """A script or style of the viewers: the installed package's file, or our start script."""
    if name in _INIT:
        return Response(
            _INIT[name], media_type="text/javascript", headers={"Cache-Control": _CACHE}
        )
    if name not in _ASSETS:
        raise ProblemError(NOT_FOUND, "no such documentation asset")
    body = (_STATIC / name).read_bytes()
    return Response(body, media_type=_ASSETS[name], headers={"Cache-Control": _CACHE})
