"""API documentation pages served from this machine, and HEAD answered wherever GET is."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.deployment import Deployment
from support.service_world import ServiceWorld, open_service


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_pages_load_only_same_origin_assets(world: ServiceWorld, path: str) -> None:
    response = world.client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert "script-src" not in directives  # scripts: 'self' only
    assert "unsafe-eval" not in csp and "http" not in csp
    # ReDoc writes <style> elements: inline styles on its page only.
    assert ("unsafe-inline" in csp) == (path == "/redoc")
    html = response.text
    assert "<script>" not in html  # no inline script: the CSP forbids it
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls, html
    assert all(url.startswith("/docs/assets/") for url in urls), urls
    for url in urls:
        asset = world.client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url


def test_the_viewers_read_this_services_openapi(world: ServiceWorld) -> None:
    for init in ("/docs/assets/swagger-init.js", "/docs/assets/redoc-init.js"):
        assert '"/openapi.json"' in world.client.get(init).text
    assert world.client.get("/openapi.json").status_code == 200


def test_redoc_loads_no_logo_from_its_makers_cdn(world: ServiceWorld) -> None:
    bundle = world.client.get("/docs/assets/redoc.standalone.js").content
    assert b"Redoc" in bundle and b"cdn.redoc.ly" not in bundle


def test_an_unknown_docs_asset_is_a_404_problem(world: ServiceWorld) -> None:
    response = world.client.get("/docs/assets/..%2Fconsts.py")
    assert response.status_code == 404
    assert world.client.get("/docs/assets/index.html").status_code == 404


@pytest.mark.parametrize("path", ["/", "/docs", "/v1/breaches", "/assets/lookup.css"])
def test_head_answers_where_get_does_with_no_body(world: ServiceWorld, path: str) -> None:
    get = world.client.get(path)
    head = world.client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == str(len(get.content))


def test_head_on_a_post_only_route_is_still_405(world: ServiceWorld) -> None:
    assert world.client.head("/v1/commitments").status_code == 405


def test_a_head_request_is_logged_as_head_on_its_route(
    world: ServiceWorld, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="commitledger.service.http"):
        assert world.client.head("/v1/breaches").status_code == 200
    [line] = [r for r in caplog.records if r.getMessage() == "request"]
    assert (line.__dict__["method"], line.__dict__["route"]) == ("HEAD", "/v1/breaches")
