"""A built model rolled out to simulated devices answers as the Python model does, and the
model inventory (REST) shows which device runs which version in which slot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.ota_delivery.conftest import FAST, SLOT, Env, start_env, stop_env


@pytest.fixture
async def env(tmp_path: Path, signing_key: Any, example_model_wasm: bytes) -> AsyncIterator[Env]:
    e = await start_env(tmp_path, f"sqlite:///{tmp_path / 'server.db'}", signing_key,
                        example_model_wasm, **FAST)
    try:
        yield e
    finally:
        await stop_env(e)


@pytest.fixture(scope="session")
def signing_key() -> Any:
    from ota.keys import generate_private_key

    return generate_private_key("ed25519")


async def test_rolled_out_model_answers_like_python_on_devices_and_shows_in_the_inventory(
        env: Env, iris_forest_file: Path, iris_csv: Path, iris: tuple[Any, Any]) -> None:
    import joblib

    from ota.modelbuild import build_model, sota_package

    result = build_model(iris_forest_file, check=iris_csv)
    package = sota_package(result, private_key=env.key, name="iris", version="1.1.0",
                           slot_size=SLOT)
    d1, d2 = await env.device("mb-1"), await env.device("mb-2")
    art = env.add_artifact(package, "sota", "1.1.0", name="iris")
    dep = await env.deploy(artifact_id=art, endpoints=["mb-1", "mb-2"])
    view = await env.wait_done(dep)
    assert [t["state"] for t in view["targets"]] == ["succeeded", "succeeded"], view

    X, _ = iris
    rows = X[::7]  # 22 rows across the three classes
    python = joblib.load(iris_forest_file).predict(rows)
    answers = []
    for row in rows:
        args = ",".join(f"{v:g}" for v in row)
        r = await env.http.post("/api/v1/devices/mb-1/execute/33100/0/8", json={"args": args})
        assert r.status_code in (200, 204), r.text
        r = await env.http.get("/api/v1/devices/mb-1/data/33100/0/6")
        answers.append(r.json()["values"]["/33100/0/6"])
    assert answers == [int(c) for c in python]
    assert len(set(answers)) == 3

    r = await env.http.get("/api/v1/models", params={"refresh": "true"})
    assert r.status_code == 200, r.text
    models = {m["name"]: m for m in r.json()}
    iris_entry = models["iris"]
    (version,) = iris_entry["versions"]
    assert version["version"] == "1.1.0"
    assert version["artifacts"][0]["id"] == art
    assert version["artifacts"][0]["wasm_sha256"] == __import__("hashlib").sha256(result.wasm).hexdigest()
    assert sorted((d["endpoint"], d["slot"]) for d in version["active_on"]) == [("mb-1", "B"), ("mb-2", "B")]
    by_dev = {d["endpoint"]: d for d in iris_entry["devices"]}
    assert by_dev["mb-1"]["inference_count"] == len(rows) and by_dev["mb-1"]["version"] == "1.1.0"
    assert by_dev["mb-1"]["last_latency_us"] > 0 and by_dev["mb-2"]["inference_count"] == 0
    assert iris_entry["inference_count"] == len(rows)
    old = models["classifier"]["versions"][0]
    assert old["version"] == "1.0.0" and {d["slot"] for d in old["installed_on"]} == {"A"}


async def test_inventory_needs_a_token_with_read_scope(env: Env) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=str(env.http.base_url)) as anon:
        r = await anon.get("/api/v1/models")
    assert r.status_code == 401


async def test_console_models_page_lists_versions_and_devices_for_signed_in_operators(
        env: Env, iris_forest_file: Path) -> None:
    import re

    import httpx

    from lwm2m_server.console import models as console_models
    from ota.modelbuild import build_model, sota_package

    # What mount_console will do: the page's route goes before the console's catch-all 404.
    app = env.runner.app
    before = len(app.router.routes)
    app.include_router(console_models.router)
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[0:0] = added
    result = build_model(iris_forest_file)
    await env.device("page-1")
    art = env.add_artifact(sota_package(result, private_key=env.key, name="iris", version="1.1.0",
                                        slot_size=SLOT), "sota", "1.1.0", name="iris")
    view = await env.wait_done(await env.deploy(artifact_id=art, endpoints=["page-1"]))
    assert view["targets"][0]["state"] == "succeeded", view
    async with httpx.AsyncClient(base_url=str(env.http.base_url)) as http:
        r = await http.get("/console/models")
        assert r.status_code in (302, 303, 307) and "/console/login" in r.headers["location"]
        page = await http.get("/console/login")
        nonce = re.search(r'name="login_nonce" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        r = await http.post("/console/login", data={"token": env.token, "login_nonce": nonce})
        assert r.status_code == 303, r.text
        r = await http.get("/console/models", params={"refresh": "true"})
    assert r.status_code == 200, r.text
    section = r.text.split('id="model-iris"', 1)[1].split("</section>", 1)[0]
    assert "<td>1.1.0</td>" in section and ">page-1</a> (B)" in section
    assert 'id="model-classifier"' in r.text
