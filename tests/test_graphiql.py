"""GraphiQL served by the hub itself: the vendored assets are the files strawberry's page pins,
byte for byte, with their licences; the page loads nothing but them; and a real browser with
no network beyond loopback opens it, takes a pasted token and runs the README's example."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
import strawberry

from app import create_app
from domain.records import CallerRole
from edge.graphiql import ASSET_DIRECTORY, ASSET_ROUTE, ASSETS
from tests.clock import SAFETY_NET
from tests.conftest import Estate, person_id_of
from tests.examples import EXAMPLES, known_to_all
from tests.servers import uvicorn_serving

# One backend is enough: what the page and the browser do is the same on either.
ON_SQLITE = pytest.mark.parametrize("estate", ["sqlite"], indirect=True)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Nothing of Chromium's own reaches out either: no updates, sync or background fetches.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STRAWBERRY_PAGE = Path(strawberry.__file__).parent / "static" / "graphiql.html"
PINNED = re.compile(r'(?:src|href)="https://unpkg\.com/([^"]+)"\s+integrity="([^"]+)"')
LOADED = re.compile(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"[^>]*integrity="([^"]+)"')


def integrity_of(content: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(content).digest()).decode()


def test_each_vendored_asset_has_the_hash_the_page_carries_and_its_licence() -> None:
    for asset in ASSETS:
        content = (ASSET_DIRECTORY / asset.path).read_bytes()
        assert integrity_of(content) == asset.integrity, f"{asset.path}: {integrity_of(content)}"
        assert (ASSET_DIRECTORY / f"{asset.package}@{asset.version}" / "LICENSE").is_file(), asset.path


def test_the_vendored_assets_are_the_files_strawberrys_page_pins() -> None:
    pinned = dict(PINNED.findall(STRAWBERRY_PAGE.read_text()))
    # strawberry's js-cookie only copies Django's CSRF cookie; the hub sets no cookie.
    assert set(pinned) - {a.path for a in ASSETS} == {"js-cookie@3.0.5/dist/js.cookie.min.js"}
    for asset in ASSETS:
        assert pinned[asset.path] == asset.integrity, asset.path


@ON_SQLITE
async def test_the_page_loads_only_the_hubs_own_assets(policy_client: httpx.AsyncClient) -> None:
    page = await policy_client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    loaded = LOADED.findall(page.text)
    assert len(loaded) == len(ASSETS)
    assert "https://" not in page.text and "unpkg" not in page.text
    for url, integrity in loaded:
        assert url.startswith(f"{ASSET_ROUTE}/")
        served = await policy_client.get(url)  # no token: the assets hold no data
        assert served.status_code == 200, url
        assert integrity_of(served.content) == integrity, url
    licence = await policy_client.get(f"{ASSET_ROUTE}/graphiql@3.8.3/LICENSE")
    assert licence.status_code == 200 and "MIT License" in licence.text


@ON_SQLITE
async def test_graphiql_runs_the_readme_example_with_no_network_beyond_loopback(
    estate: Estate, client: httpx.AsyncClient
) -> None:
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (`apt-get install chromium`; .ci/run installs it)")
    async_api = pytest.importorskip("playwright.async_api", reason="playwright is a dev extra")
    person = await known_to_all(client)
    token = estate.headers(CallerRole.CARDHOLDER, person_id=person_id_of(estate.settings, person["id"]))
    pasted = orjson.dumps({"Authorization": token["Authorization"]}).decode()
    requested: list[str] = []
    refused: list[str] = []

    async def loopback_only(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            refused.append(url)
            await route.abort("internetdisconnected")

    async with (
        uvicorn_serving(create_app(estate.settings)) as address,
        async_api.async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            page.set_default_timeout(SAFETY_NET * 1000)
            await page.route("**/*", loopback_only)
            page.on("request", lambda request: requested.append(request.url))
            await page.goto(f"http://{address}/graphql")

            headers_editor = page.locator(".graphiql-editor-tool .graphiql-editor").last
            assert "Bearer <token>" in await headers_editor.inner_text()  # where the token goes
            await _paste(page, headers_editor, pasted)
            await _paste(page, page.locator(".graphiql-query-editor .CodeMirror"), EXAMPLES["cardholder"])
            await page.locator(".graphiql-execute-button").click()
            # The result pane draws only its visible lines: its editor holds the whole answer.
            result = ".graphiql-response .CodeMirror"
            await page.wait_for_function(
                f"document.querySelector('{result}').CodeMirror.getValue().includes('\"data\"')"
            )
            answer = orjson.loads(
                await page.evaluate(f"document.querySelector('{result}').CodeMirror.getValue()")
            )
        finally:
            await browser.close()

    assert "errors" not in answer, answer
    me = answer["data"]["me"]
    assert me["id"] == person["id"]
    assert me["workPermit"]["number"] == person["workPermit"]["number"]
    assert me["socialSecurityCard"]["number"] == person["socialSecurityCard"]["number"]
    assert me["insuranceParticipations"] and me["visas"] and me["entries"]["edges"]
    assert refused == [], "the page asked for something beyond loopback"
    assert requested and all(urlsplit(url).hostname == "127.0.0.1" for url in requested), requested


async def _paste(page: Any, editor: Any, text: str) -> None:
    """Replaces an editor's text as a paste does: the whole text inserted at once."""
    await editor.click()
    await page.keyboard.press("ControlOrMeta+A")
    await page.keyboard.insert_text(text)
