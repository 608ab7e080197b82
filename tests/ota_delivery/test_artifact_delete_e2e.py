"""Deleting an artifact over REST (``DELETE /api/v1/artifacts/{id}``) on a running server:
refused while a deployment needs it, then the row, the file and both /fw routes are gone, the
deployment's history stays, and nothing can deploy or retry the deleted artifact."""

from __future__ import annotations

import hashlib

from aiocoap import GET, Code, Context, Message
from aiocoap.optiontypes import BlockOption

from .conftest import Env, firmware_image


async def _coap_block0(env: Env, sha: str) -> Message:
    client = await Context.create_client_context()
    try:
        req = Message(code=GET, uri=f"{env.coap_uri}/fw/{sha}",
                      block2=BlockOption.BlockwiseTuple(0, False, 6))
        return await client.request(req, handle_blockwise=False).response
    finally:
        await client.shutdown()


async def test_delete_is_refused_while_a_deployment_needs_it_then_removes_everything(env: Env) -> None:
    data = firmware_image("2.1.0")
    sha = hashlib.sha256(data).hexdigest()
    art = env.add_artifact(data, "firmware", "2.1.0", name="app")
    path = env.runner.rollout.artifacts.path(sha)
    # Served over CoAP once: the /fw resource now holds the file mapped in memory.
    assert (await _coap_block0(env, sha)).code == Code.CONTENT
    # A device that never answers keeps the deployment running.
    dep = await env.deploy(artifact_id=art, endpoints=["ghost-del"], retries=5, timeout=30)
    r = await env.http.delete(f"/api/v1/artifacts/{art}")
    assert r.status_code == 409, r.text
    assert r.json()["deployments"] == [dep] and "cancel" in r.json()["detail"]
    assert path.is_file() and (await env.http.get(f"/api/v1/artifacts/{art}")).status_code == 200

    r = await env.http.post(f"/api/v1/deployments/{dep}/cancel")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    r = await env.http.delete(f"/api/v1/artifacts/{art}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["id"], body["sha256"], body["deleted"]) == (art, sha, True)
    assert not path.exists()
    assert (await env.http.get(f"/api/v1/artifacts/{art}")).status_code == 404
    assert art not in [a["id"] for a in (await env.http.get("/api/v1/artifacts")).json()]
    assert (await env.http.get(f"/fw/{sha}")).status_code == 404
    assert (await _coap_block0(env, sha)).code == Code.NOT_FOUND  # not from the mapped copy
    # The deployment keeps its history; the artifact cannot be deployed again or deleted twice.
    view = await env.view(dep)
    assert (view["state"], view["artifact_id"], view["sha256"]) == ("cancelled", art, sha)
    r = await env.http.post("/api/v1/deployments", json={"artifact_id": art,
                                                         "endpoints": ["ghost-del"]})
    assert r.status_code == 422 and f"artifact {art} does not exist" in r.json()["detail"]
    r = await env.http.delete(f"/api/v1/artifacts/{art}")
    assert r.status_code == 404 and str(art) in r.json()["detail"]
    # The deletion is an event, stored like the others.
    events = (await env.http.get("/api/v1/events", params={"kind": "artifact_deleted"})).json()
    assert [(e["data"]["artifact_id"], e["data"]["sha256"]) for e in events] == [(art, sha)]


async def test_a_finished_deployment_cannot_retry_a_deleted_artifact(env: Env) -> None:
    from lwm2m_server.sim.transfer import Faults

    dev = await env.device("del-bad", faults=Faults(corrupt_download=True))
    art = env.add_artifact(firmware_image("2.1.1"), "firmware", "2.1.1")
    dep = await env.deploy(artifact_id=art, endpoints=["del-bad"], retries=0, failure_threshold=1)
    view = await env.wait_done(dep)
    assert view["state"] == "completed_with_failures", view
    r = await env.http.delete(f"/api/v1/artifacts/{art}")
    assert r.status_code == 200, r.text
    r = await env.http.post(f"/api/v1/deployments/{dep}/retry")
    assert r.status_code == 409 and "was deleted" in r.json()["detail"], r.text
    view = await env.view(dep)
    assert view["state"] == "completed_with_failures"
    assert [t["state"] for t in view["targets"]] == ["failed"]  # the retry changed nothing
    assert dev.firmware_version == "1.0.0"


async def test_the_same_bytes_uploaded_again_after_a_delete_are_served(env: Env) -> None:
    data = firmware_image("2.1.2")
    sha = hashlib.sha256(data).hexdigest()
    form = {"kind": "firmware", "name": "app", "version": "2.1.2"}
    r = await env.http.post("/api/v1/artifacts", data=form, files={"file": ("fw.bin", data)})
    assert r.status_code == 201, r.text
    first = r.json()["id"]
    assert (await env.http.delete(f"/api/v1/artifacts/{first}")).status_code == 200
    r = await env.http.post("/api/v1/artifacts", data=form, files={"file": ("fw.bin", data)})
    assert r.status_code == 201 and r.json()["id"] != first, r.text
    await env.runner.rollout.drain_removals()  # the deletion's own clean-up has run
    got = await env.http.get(f"/fw/{sha}")
    assert got.status_code == 200 and got.content == data


async def test_delete_needs_the_deploy_scope(env: Env) -> None:
    import httpx

    from lwm2m_server.store.tokens import create_token

    art = env.add_artifact(firmware_image("2.1.3"), "firmware", "2.1.3")
    _, reader = create_token(env.server.engine, "reader-del", ["read"])
    async with httpx.AsyncClient(base_url=env.http.base_url,
                                 headers={"Authorization": f"Bearer {reader}"}) as c:
        r = await c.delete(f"/api/v1/artifacts/{art}")
    assert r.status_code == 403 and "deploy" in r.json()["detail"]
    assert (await env.http.get(f"/api/v1/artifacts/{art}")).status_code == 200
