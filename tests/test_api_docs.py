"""``/docs`` is served entirely by the app: no CDN, no validator, assets from the package."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

import pivotal_reporting

STATIC = Path(pivotal_reporting.__file__).parent / "static" / "swagger"
URL = re.compile(r"""https?://[^\s"'<>)]+""")
REFERENCE = re.compile(r"""(?:src|href|url)\s*[:=]\s*["']([^"']+)["']""")


def test_docs_page_references_nothing_outside_the_app(client: httpx.Client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert URL.findall(page.text) == []
    references = REFERENCE.findall(page.text)
    assert {
        "/docs-static/swagger/swagger-ui-bundle.js",
        "/docs-static/swagger/swagger-ui.css",
    } <= set(references)
    for reference in references:
        absolute = urljoin(str(page.url), reference)
        assert urlsplit(absolute).netloc == urlsplit(str(page.url)).netloc, reference
        assert client.get(absolute).status_code == 200, reference
    assert '"validatorUrl": null' in page.text


def test_assets_are_the_vendored_files(client: httpx.Client) -> None:
    for name, media in (
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui.css", "text/css"),
        ("favicon-32x32.png", "image/png"),
    ):
        response = client.get(f"/docs-static/swagger/{name}")
        assert response.status_code == 200
        assert media in response.headers["content-type"]
        assert response.content == (STATIC / name).read_bytes()
    assert "swagger-ui-dist" in (STATIC / "VERSION").read_text()
    assert "Apache License" in (STATIC / "LICENSE").read_text()


def test_redoc_is_not_offered_and_openapi_stays(client: httpx.Client) -> None:
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs-static/swagger/missing.js").status_code == 404
