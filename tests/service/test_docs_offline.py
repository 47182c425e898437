"""/docs and /redoc work in an air-gapped cluster: every script, style sheet, favicon and
schema they load comes from the app itself, without an API key."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from tests.fixtures_app import Harness, keyed_client, keyed_settings, start_harness

BASE = "http://driftmon"
PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect")
# where the pages name what they load: attributes, and Swagger UI's `url: '...'`
REFERENCE_ATTRIBUTES = {"src", "href", "spec-url"}
SWAGGER_SPEC = re.compile(r"""\burl:\s*['"]([^'"]+)['"]""")


class References(HTMLParser):
    """Every URL a page's tags refer to."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in REFERENCE_ATTRIBUTES and value]


def references(page: str) -> list[str]:
    parser = References()
    parser.feed(page)
    return parser.urls + SWAGGER_SPEC.findall(page)


async def test_docs_load_every_asset_from_the_app_itself(redis_url: str, key_prefix: str) -> None:
    """With API keys configured, and no key sent: the docs are open, as before."""
    settings = keyed_settings(redis_url, key_prefix, {"reader": ["read"]})
    async for harness in start_harness(settings):
        async with keyed_client(harness, {}) as anonymous:
            loaded: set[str] = set()
            for page_path in PAGES:
                page = await anonymous.get(page_path)
                assert page.status_code == 200, page_path
                assert page.headers["content-type"].startswith("text/html")
                for reference in references(page.text):
                    url = urljoin(f"{BASE}{page_path}", reference)
                    parts = urlsplit(url)
                    assert (parts.scheme, parts.netloc) == ("http", "driftmon"), reference
                    asset = await anonymous.get(url)
                    assert asset.status_code == 200, url
                    assert asset.content, url
                    loaded.add(parts.path)
            # the scripts, the style sheet, the favicon and the schema, at least
            assert {
                "/docs/swagger-ui-bundle.js",
                "/docs/swagger-ui.css",
                "/docs/favicon.png",
                "/redoc/redoc.standalone.js",
                "/openapi.json",
            } <= loaded


async def test_no_page_names_another_host(harness: Harness) -> None:
    pages = {path: (await harness.client.get(path)).text for path in ("/docs", "/redoc")}
    for path, page in pages.items():
        # no CDN, no Google Fonts
        assert re.search(r"https?://", page) is None, path
    # Swagger UI would otherwise load a badge from validator.swagger.io
    assert '"validatorUrl": null' in pages["/docs"]


async def test_assets_are_cacheable_and_typed(harness: Harness) -> None:
    expected = {
        "/docs/swagger-ui-bundle.js": "javascript",
        "/docs/swagger-ui.css": "text/css",
        "/docs/favicon.png": "image/png",
        "/redoc/redoc.standalone.js": "javascript",
    }
    for path, media_type in expected.items():
        response = await harness.client.get(path)
        assert media_type in response.headers["content-type"], path
        assert "max-age" in response.headers["cache-control"]
        assert response.headers.get("etag")


async def test_the_docs_are_not_in_the_schema(harness: Harness) -> None:
    schema = (await harness.client.get("/openapi.json")).json()
    assert not [path for path in schema["paths"] if path.startswith(("/docs", "/redoc"))]
