"""The interactive docs work without internet: every asset comes from the api itself."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest

#: Anything a page could load: src/href attributes, and URLs inside its inline script.
_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")
_ABSOLUTE = re.compile(r"""(?:https?:)?//[\w.-]+""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_page_names_no_other_host(client: httpx.AsyncClient, page: str) -> None:
    response = await client.get(page, headers={"X-API-Key": ""})
    assert response.status_code == 200
    html = response.text
    hosts = {
        urlsplit(url if ":" in url else f"http:{url}").hostname for url in _ABSOLUTE.findall(html)
    }
    assert hosts <= {"netcron.test"}, f"{page} names other hosts: {hosts}"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_every_asset_a_docs_page_names_answers(client: httpx.AsyncClient, page: str) -> None:
    html = (await client.get(page, headers={"X-API-Key": ""})).text
    assets = {first or second for first, second in _REFERENCE.findall(html)}
    assert any(asset.endswith(".js") for asset in assets), assets
    for asset in assets:
        response = await client.get(asset, headers={"X-API-Key": ""})
        assert response.status_code == 200, asset
        assert response.content, asset
