"""API documentation pages, /docs (Swagger UI) and /redoc (ReDoc), served from this
machine: the scripts and styles come from the installed fastapi-offline package, never a CDN,
and the pages start their viewer from a same-origin script, so their CSP allows only 'self'."""

from __future__ import annotations

import functools
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api.service.problems import NOT_FOUND, ProblemError

router = APIRouter(include_in_schema=False)

# Everything from this origin only; images may also be data: URLs (the viewers' icons).
DOCS_CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
# ReDoc styles itself through <style> elements it writes (styled-components), with no way to
# give them a nonce, and runs its search in a worker made from a blob: of its own script:
# on its page styles may be inline and a worker a blob:; scripts still come from 'self' only.
REDOC_CSP = DOCS_CSP.replace(
    "img-src", "style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; img-src"
)
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
_STATIC = files("fastapi_offline") / "static"
# ReDoc's one image from elsewhere, its maker's logo: an empty source (it hides an image that
# fails to load), so that no request leaves for a CDN, not even one the CSP would block.
_ELSEWHERE = {"redoc.standalone.js": (b'src:"https://cdn.redoc.ly/redoc/logo-mini.svg"', b'src:""')}
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
        f'<title>{title}</title><link rel="icon" href="/docs/assets/favicon.png">{head}'
        f"</head><body>{body}</body></html>\n"
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


def _html(text: str, csp: str = DOCS_CSP) -> HTMLResponse:
    return HTMLResponse(text, headers={"Content-Security-Policy": csp})


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    """Swagger UI over /openapi.json."""
    return _html(SWAGGER_HTML)


@router.get("/redoc")
def redoc() -> HTMLResponse:
    """ReDoc over /openapi.json."""
    return _html(REDOC_HTML, REDOC_CSP)


@router.get("/docs/assets/{name}")
def docs_asset(name: str) -> Response:
    """A script or style of the viewers: the installed package's file, or our start script."""
    if name in _INIT:
        return Response(
            _INIT[name], media_type="text/javascript", headers={"Cache-Control": _CACHE}
        )
    if name not in _ASSETS:
        raise ProblemError(NOT_FOUND, "no such documentation asset")
    return Response(_asset(name), media_type=_ASSETS[name], headers={"Cache-Control": _CACHE})


@functools.cache
def _asset(name: str) -> bytes:
    body = (_STATIC / name).read_bytes()
    if name in _ELSEWHERE:
        found, instead = _ELSEWHERE[name]
        body = body.replace(found, instead)
    return body
