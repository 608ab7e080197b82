"""Ids and offsets outside the database's 64-bit range are the caller's error (400), never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import bearer

BIG = "9223372036854775808"  # 2**63: one past the largest BIGINT

ROUTES = [
    ("GET", f"/api/v1/artifacts?offset={BIG}", None),
    ("GET", f"/api/v1/artifacts/{BIG}", None),
    ("GET", f"/api/v1/deployments?offset={BIG}", None),
    ("GET", f"/api/v1/deployments/{BIG}", None),
    ("POST", f"/api/v1/deployments/{BIG}/pause", None),
    ("POST", f"/api/v1/deployments/{BIG}/resume", None),
    ("POST", f"/api/v1/deployments/{BIG}/cancel", None),
    ("DELETE", f"/api/v1/tokens/{BIG}", None),
    ("DELETE", f"/api/v1/webhooks/{BIG}", None),
    ("POST", "/api/v1/deployments", {"artifact_id": 1e20, "endpoints": ["a"]}),
    ("POST", "/api/v1/deployments", {"artifact_id": int(BIG), "endpoints": ["a"]}),
    ("DELETE", "/api/v1/tokens/-1", None),
]


@pytest.mark.parametrize("method, url, body", ROUTES)
async def test_ids_and_offsets_of_2_63_or_more_are_a_400_with_the_field_named(
        client: httpx.AsyncClient, tokens: dict[str, str], method: str, url: str,
        body: dict | None) -> None:
    r = await client.request(method, url, json=body, headers=bearer(tokens["admin"]))
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.json()["error"] == "invalid_request"
    loc = r.json()["errors"][0]["loc"]
    assert loc[0] in ("path", "query", "body") and (loc[-1].endswith("_id") or loc[-1] == "offset")


@pytest.mark.parametrize("url", ["/api/v1/deployments/9223372036854775807",
                                 "/api/v1/artifacts/9223372036854775807"])
async def test_the_largest_id_is_simply_not_found(client: httpx.AsyncClient,
                                                  tokens: dict[str, str], url: str) -> None:
    r = await client.get(url, headers=bearer(tokens["admin"]))
    assert r.status_code == 404, r.text
