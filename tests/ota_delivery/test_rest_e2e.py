"""REST routes of the OTA issue over real HTTP: auth, refusals with clear codes, HTTP /fw with
Range, pause/cancel, and signed webhooks delivered with retries."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from lwm2m_server.rollout.webhooks import verify_signature
from lwm2m_server.store.tokens import create_token

from .conftest import Env, firmware_image


async def test_auth_scopes_and_clear_errors(env: Env) -> None:
    base = env.http.base_url
    async with httpx.AsyncClient(base_url=base) as anon:
        assert (await anon.get("/api/v1/deployments")).status_code == 401
    _, reader = create_token(env.server.engine, "reader", ["read"])
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {reader}"}) as c:
        assert (await c.get("/api/v1/deployments")).status_code == 200
        r = await c.post("/api/v1/deployments", json={"artifact_id": 1, "endpoints": ["a"]})
        assert r.status_code == 403 and "deploy" in r.json()["detail"]
    r = await env.http.get("/api/v1/deployments/999")
    assert r.status_code == 404 and "999" in r.json()["detail"]
    r = await env.http.post("/api/v1/deployments", json={"artifact_id": 999, "endpoints": ["a"]})
    assert r.status_code == 422 and "artifact 999 does not exist" in r.json()["detail"]
    art = env.add_artifact(firmware_image("2.0.0"), "firmware", "2.0.0")
    for bad in ({"artifact_id": art, "endpoints": ["a"], "stages": [50, 10]},
                {"artifact_id": art, "endpoints": ["a"], "tag": "x"},
                {"artifact_id": art}):
        r = await env.http.post("/api/v1/deployments", json=bad)
        assert r.status_code == 422, (bad, r.text)
    r = await env.http.post("/api/v1/deployments", json={"artifact_id": art,
                                                         "endpoints": ["a"], "max_concurrent": 0})
    assert r.status_code in (400, 422)
    r = await env.http.post("/api/v1/deployments", json={"artifact_id": art, "endpoints": ["a"],
                                                         "max_concurent": 5})
    assert r.status_code == 400 and "max_concurent" in r.text  # schema errors: the API's 400
    assert (await env.http.get("/api/v1/deployments?state=bogus")).status_code == 400
    assert (await env.http.get("/api/v1/deployments")).json() == []


async def test_pause_and_cancel_through_rest(env: Env) -> None:
    art = env.add_artifact(firmware_image("2.0.0"), "firmware", "2.0.0")
    dep = await env.deploy(artifact_id=art, endpoints=["ghost-1", "ghost-2"], retries=5,
                           timeout=30)
    r = await env.http.post(f"/api/v1/deployments/{dep}/pause")
    assert r.status_code == 200 and r.json()["state"] == "paused"
    r = await env.http.post(f"/api/v1/deployments/{dep}/cancel")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    r = await env.http.post(f"/api/v1/deployments/{dep}/resume")
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]
    view = await env.view(dep)
    assert {t["state"] for t in view["targets"]} == {"cancelled"}
    listed = (await env.http.get("/api/v1/deployments")).json()
    assert [d["id"] for d in listed] == [dep] and listed[0]["counts"]["cancelled"] == 2


async def test_oversized_or_bad_uploads_are_refused_and_nothing_is_kept(env: Env) -> None:
    env.runner.app.state.max_artifact_size = 4096
    data = {"kind": "firmware", "name": "fw", "version": "1.0.0"}
    r = await env.http.post("/api/v1/artifacts", data=data,
                            files={"file": ("big.bin", b"\0" * 50_000)})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    # Under the Content-Length pre-check but over the limit: stopped while streaming to the store.
    r = await env.http.post("/api/v1/artifacts", data=data,
                            files={"file": ("big.bin", b"\0" * 10_000)})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    # Chunked (no Content-Length): cut off as soon as the body passes the limit.
    boundary = "b0undary"

    async def chunked():  # type: ignore[no-untyped-def]
        head = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                       f"{v}\r\n" for k, v in data.items())
        yield (head + f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
               'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n').encode()
        for _ in range(100):
            yield b"\0" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()
    r = await env.http.post("/api/v1/artifacts", content=chunked(), headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    r = await env.http.post("/api/v1/artifacts", data={"kind": "firmware"},
                            files={"file": ("x.bin", b"abc")})
    assert r.status_code == 400 and "missing: name, version" in r.json()["detail"]
    r = await env.http.post("/api/v1/artifacts", data={**data, "kind": "rootkit"},
                            files={"file": ("x.bin", b"abc")})
    assert r.status_code == 400 and "kind" in r.json()["detail"]
    r = await env.http.post("/api/v1/artifacts", data={**data, "kind": "model"},
                            files={"file": ("x.wasm", b"not wasm at all")})
    assert r.status_code == 422
    assert (await env.http.get("/api/v1/artifacts")).json() == []
    assert list((env.tmp / "artifacts").iterdir()) == []


async def test_http_fw_serves_ranges_so_downloads_resume(env: Env) -> None:
    image = firmware_image("2.0.0", size=5000)
    env.add_artifact(image, "firmware", "2.0.0")
    import hashlib

    sha = hashlib.sha256(image).hexdigest()
    async with httpx.AsyncClient(base_url=env.http.base_url) as dev:  # devices send no token
        r = await dev.get(f"/fw/{sha}")
        assert r.status_code == 200 and r.content == image
        assert r.headers["accept-ranges"] == "bytes"
        r = await dev.get(f"/fw/{sha}", headers={"Range": "bytes=1000-"})
        assert r.status_code == 206 and r.content == image[1000:]
        assert r.headers["content-range"] == f"bytes 1000-{len(image) - 1}/{len(image)}"
        r = await dev.get(f"/fw/{sha}", headers={"Range": "bytes=-10"})
        assert r.status_code == 206 and r.content == image[-10:]
        r = await dev.get(f"/fw/{sha}", headers={"Range": f"bytes={len(image)}-"})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(image)}"
        assert (await dev.get("/fw/" + "0" * 64)).status_code == 404
        assert (await dev.get("/fw/not-a-hash")).status_code == 404


class Receiver:
    """A tiny HTTP receiver on loopback: answers 500 to the first ``fail_first`` posts."""

    def __init__(self, fail_first: int = 1) -> None:
        self.fail_first = fail_first
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in
                           (ln.partition(":") for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.posts.append((headers, body))
                status = "500 Oops" if len(self.posts) <= self.fail_first else "200 OK"
                writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_webhooks_get_signed_target_events_with_retries(env: Env) -> None:
    receiver = Receiver(fail_first=1)
    url = await receiver.start()
    try:
        r = await env.http.post("/api/v1/webhooks", json={"url": url,
                                                          "kinds": ["deployment_target"]})
        assert r.status_code == 201
        secret = r.json()["secret"]
        assert "secret" not in (await env.http.get("/api/v1/webhooks")).json()[0]
        bad = await env.http.post("/api/v1/webhooks", json={"url": "ftp://x/y"})
        assert bad.status_code == 422
        env.runner.rollout.webhooks.backoff = 0.05
        await env.device("wh-1")
        art = env.add_artifact(firmware_image("2.0.0"), "firmware", "2.0.0")
        dep = await env.deploy(artifact_id=art, endpoints=["wh-1"])
        await env.wait_done(dep)

        def states() -> list[str]:
            seen: list[str] = []
            for headers, body in receiver.posts:
                if not verify_signature(secret, body, headers.get("x-lwm2m-signature")):
                    continue
                ev: dict[str, Any] = json.loads(body)
                if ev["data"]["state"] not in seen[-1:]:
                    seen.append(ev["data"]["state"])
            return seen

        deadline = asyncio.get_running_loop().time() + 10
        while "succeeded" not in states():
            assert asyncio.get_running_loop().time() < deadline, receiver.posts
            await asyncio.sleep(0.05)
        assert states()[0] == "transferring" and states()[-1] == "succeeded"
        # The first delivery was answered 500 and retried with the same event id.
        ids = [h["x-lwm2m-delivery"] for h, _ in receiver.posts]
        assert ids[0] == ids[1]
        assert all(verify_signature(secret, b, h["x-lwm2m-signature"]) for h, b in receiver.posts)
        assert not verify_signature(secret, receiver.posts[0][1] + b" ", receiver.posts[0][0]["x-lwm2m-signature"])
    finally:
        await receiver.stop()
