"""The rollout engine's logic against an in-process fake device port (no network here: the
end-to-end tests in tests/ota_delivery run the real server and simulated devices)."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest
from sqlmodel import Session, select

from lwm2m_server.events import EventBus
from lwm2m_server.model import Path
from lwm2m_server.rollout import service
from lwm2m_server.rollout.drivers import ArtifactInfo
from lwm2m_server.rollout.engine import RolloutEngine
from lwm2m_server.rollout.errors import DeploymentConflict, InvalidDeployment
from lwm2m_server.rollout.port import EndpointWaiter
from lwm2m_server.rollout.service import DeploymentSpec
from lwm2m_server.rollout.state import InvalidTransition, TargetState
from lwm2m_server.rollout.tables import Target
from lwm2m_server.store.db import init_db, make_engine

from .fakes import FakeFleet

FW = b"\x3d\xb8\xf3\x96" + b"firmware-image" * 100
FW_SHA = hashlib.sha256(FW).hexdigest()
WASM = b"\0asm\x01\0\0\0" + b"model" * 50
SOTA = b"SOTA\x01\0\0\0" + (4).to_bytes(4, "little") + b"MANI" + WASM
SOTA_SHA = hashlib.sha256(SOTA).hexdigest()
WASM_SHA = hashlib.sha256(WASM).hexdigest()
ARTIFACTS = {
    1: ArtifactInfo(1, "firmware", FW_SHA, len(FW), "1.1.10", "fw"),
    2: ArtifactInfo(2, "sota", SOTA_SHA, len(SOTA), "2.0.0", "model"),
    3: ArtifactInfo(3, "model", "ab" * 32, 10, "1.0.0", "raw-wasm"),
    4: ArtifactInfo(4, "sota", SOTA_SHA, len(SOTA), "2.0.0", "model", payload_sha256=WASM_SHA,
                    sota_alg=-8),  # signed with EdDSA (Ed25519)
}
BLOBS = {FW_SHA: FW, SOTA_SHA: SOTA}
FINAL = {"completed", "completed_with_failures"}


def lookup(_session: Session, artifact_id: int) -> ArtifactInfo | None:
    return ARTIFACTS.get(artifact_id)


@pytest.fixture
def db(tmp_path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'rollout.db'}")
    init_db(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def fleet() -> FakeFleet:
    return FakeFleet({FW_SHA: ("1.1.10", None), SOTA_SHA: ("2.0.0", WASM_SHA)})


def make_engine_for(db, fleet, events=None, **kw):  # type: ignore[no-untyped-def]
    return RolloutEngine(db, fleet, read_artifact=BLOBS.__getitem__, events=events,
                         coap_base_url="coap://127.0.0.1:5683", http_base_url="http://127.0.0.1:8080",
                         lookup=lookup, poll=0.05, tick=0.02, backoff_base=0.01, **kw)


def create(db, **kw):  # type: ignore[no-untyped-def]
    return service.create_deployment(db, DeploymentSpec(**kw), lookup=lookup)


async def wait_state(db, dep_id: int, states: set[str], timeout: float = 30.0) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        view = service.deployment_view(db, dep_id)
        if view["state"] in states:
            return view
        if time.monotonic() > deadline:
            raise AssertionError(f"deployment stuck: {view}")
        await asyncio.sleep(0.02)


async def until(check, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    """Wait until ``check()`` is true (generous: the machine may be busy)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def deploy_and_wait(db, fleet, **kw):  # type: ignore[no-untyped-def]
    """Create a deployment, run an engine until it completes, return its view."""
    eng = make_engine_for(db, fleet)
    dep = create(db, **kw)
    await eng.start()
    try:
        return await wait_state(db, dep.id, FINAL)
    finally:
        await eng.stop()


async def test_firmware_pull_updates_every_device_once_and_publishes_each_state(db, fleet):  # type: ignore[no-untyped-def]
    for i in range(5):
        fleet.add(f"d{i}", fw_version="1.1.9")
    bus = EventBus()
    seen: list = []

    async def collect() -> None:
        async for ev in bus.subscribe():
            if ev.kind == "deployment_target":
                seen.append((ev.endpoint, ev.data["state"]))
    collector = asyncio.create_task(collect())
    await asyncio.sleep(0)
    eng = make_engine_for(db, fleet, events=bus)
    dep = create(db, artifact_id=1, endpoints=[f"d{i}" for i in range(5)], max_concurrent=2)
    await eng.start()
    try:
        view = await wait_state(db, dep.id, FINAL)
    finally:
        await eng.stop()
        collector.cancel()
    assert [t["state"] for t in view["targets"]] == ["succeeded"] * 5
    assert all(t["result"] == 1 and t["progress"] == 1.0 for t in view["targets"])
    for d in fleet.devices.values():
        assert d.fw_version == "1.1.10" and d.fw_updates == 1
        assert d.writes == [("/5/0/1", f"coap://127.0.0.1:5683/fw/{FW_SHA}")]
    states_d0 = [s for ep, s in seen if ep == "d0"]
    for s in ("transferring", "transferred", "updating", "succeeded"):
        assert s in states_d0


async def test_http_only_device_gets_the_http_url_and_push_only_device_gets_block_write(db, fleet):  # type: ignore[no-untyped-def]
    fleet.add("http", protocols=(2,))
    fleet.add("push", delivery=1)
    view = await deploy_and_wait(db, fleet, artifact_id=1, endpoints=["http", "push"])
    assert {t["endpoint"]: t["method"] for t in view["targets"]} == {"http": "pull-http",
                                                                     "push": "push"}
    assert fleet.devices["http"].writes == [("/5/0/1", f"http://127.0.0.1:8080/fw/{FW_SHA}")]
    assert fleet.devices["push"].writes == [("/5/0/0", len(FW))]


async def test_versions_compare_semantically_so_1_1_10_is_not_already_installed_on_1_1_9(db, fleet):  # type: ignore[no-untyped-def]
    fleet.add("old", fw_version="1.1.9")
    fleet.add("same", fw_version="1.1.10")
    view = await deploy_and_wait(db, fleet, artifact_id=1, endpoints=["old", "same"])
    t = {x["endpoint"]: x for x in view["targets"]}
    assert t["old"]["state"] == "succeeded" and fleet.devices["old"].fw_updates == 1
    assert t["same"]["state"] == "succeeded" and "already running" in t["same"]["reason"]
    assert fleet.devices["same"].fw_updates == 0 and fleet.devices["same"].writes == []


async def test_integrity_failure_fails_the_target_with_update_result_and_reason_without_retry(db, fleet):  # type: ignore[no-untyped-def]
    fleet.add("bad", download_result=5)
    view = await deploy_and_wait(db, fleet, artifact_id=1, endpoints=["bad"], retries=3,
                                 failure_threshold=1.0)
    (t,) = view["targets"]
    assert t["state"] == "failed" and t["result"] == 5
    assert "integrity check failure" in t["reason"] and t["attempt"] == 0


async def test_connection_lost_is_retried_with_backoff_then_succeeds(db, fleet):  # type: ignore[no-untyped-def]
    d = fleet.add("flaky", download_result=4)
    eng = make_engine_for(db, fleet)
    dep = create(db, artifact_id=1, endpoints=["flaky"], retries=2)
    await eng.start()
    try:
        await until(lambda: service.deployment_view(db, dep.id)["targets"][0]["attempt"] >= 1)
        d.download_result = None  # the link is back
        view = await wait_state(db, dep.id, FINAL)
    finally:
        await eng.stop()
    (t,) = view["targets"]
    assert t["state"] == "succeeded" and t["attempt"] == 1 and d.fw_updates == 1


async def test_offline_device_fails_after_retries_with_readable_reason(db, fleet):  # type: ignore[no-untyped-def]
    fleet.add("gone", offline=True)
    view = await deploy_and_wait(db, fleet, artifact_id=1, endpoints=["gone"], retries=1,
                                 failure_threshold=1.0)
    (t,) = view["targets"]
    assert t["state"] == "failed" and t["attempt"] == 1 and "offline" in t["reason"]


async def test_per_device_timeout_fails_a_stalled_download(db, fleet):  # type: ignore[no-untyped-def]
    fleet.add("stuck", stall=True)
    view = await deploy_and_wait(db, fleet, artifact_id=1, endpoints=["stuck"], retries=0,
                                 timeout=0.3, failure_threshold=1.0)
    (t,) = view["targets"]
    assert t["state"] == "failed" and "timeout" in t["reason"] and "transferring" in t["reason"]


async def test_failure_threshold_pauses_and_resume_continues(db, fleet):  # type: ignore[no-untyped-def]
    for i in range(6):
        fleet.add(f"d{i}", download_result=5 if i < 2 else None)
    eng = make_engine_for(db, fleet)
    dep = create(db, artifact_id=1, endpoints=[f"d{i}" for i in range(6)], max_concurrent=1,
                 failure_threshold=0.1, retries=0)
    await eng.start()
    try:
        view = await wait_state(db, dep.id, {"paused"})
        assert "failure threshold" in view["reason"]
        await asyncio.sleep(0.2)
        untouched = [t for t in service.deployment_view(db, dep.id)["targets"]
                     if t["state"] == "pending"]
        assert len(untouched) >= 4  # nothing new starts while paused
        for d in fleet.devices.values():
            d.download_result = None
        service.resume_deployment(db, dep.id)
        view = await wait_state(db, dep.id, FINAL | {"paused"})
    finally:
        await eng.stop()
    # After resume only new failures count; d1 failed again only if it ran after d0's pause.
    states = [t["state"] for t in view["targets"]]
    assert states.count("succeeded") >= 4


async def test_stages_release_targets_in_order(db, fleet):  # type: ignore[no-untyped-def]
    eps = [f"d{i:02d}" for i in range(20)]
    for e in eps:
        fleet.add(e)
    eng = make_engine_for(db, fleet)
    dep = create(db, artifact_id=1, endpoints=eps, stages=[5, 50, 100], max_concurrent=20)
    with Session(db) as s:
        stages = [t.stage for t in s.exec(select(Target).order_by(Target.position))]
    assert stages == [0] + [1] * 9 + [2] * 10
    order: list[str] = []
    bus = EventBus()
    eng.events = bus

    async def collect() -> None:
        async for ev in bus.subscribe():
            if ev.kind == "deployment_target" and ev.data["state"] == "succeeded":
                order.append(ev.endpoint)
    c = asyncio.create_task(collect())
    await asyncio.sleep(0)
    await eng.start()
    try:
        await wait_state(db, dep.id, FINAL)
        await asyncio.sleep(0.05)
    finally:
        await eng.stop()
        c.cancel()
    assert order[0] == "d00"
    assert set(order[1:10]) == set(eps[1:10]) and set(order[10:]) == set(eps[10:])


async def test_cancel_stops_pending_targets_and_lets_updating_ones_finish(db, fleet):  # type: ignore[no-untyped-def]
    for i in range(4):
        fleet.add(f"d{i}", delay=0.2)
    eng = make_engine_for(db, fleet)
    dep = create(db, artifact_id=1, endpoints=[f"d{i}" for i in range(4)], max_concurrent=1)
    await eng.start()
    try:
        await until(lambda: service.deployment_view(db, dep.id)["targets"][0]["state"]
                    == "updating")
        service.cancel_deployment(db, dep.id)
        with pytest.raises(DeploymentConflict):
            service.resume_deployment(db, dep.id)
        await until(lambda: service.deployment_view(db, dep.id)["targets"][0]["state"]
                    == "succeeded")
        view = service.deployment_view(db, dep.id)
    finally:
        await eng.stop()
    states = [t["state"] for t in view["targets"]]
    assert view["state"] == "cancelled"
    assert states == ["succeeded", "cancelled", "cancelled", "cancelled"]
    assert [d.fw_updates for d in fleet.devices.values()] == [1, 0, 0, 0]


async def stop_mid_way_and_restart(db, fleet, artifact_id: int, prefix: str,  # type: ignore[no-untyped-def]
                                   mid_way: set[str]) -> dict:
    """Six devices; stop the engine once a target is in one of ``mid_way`` and another is done,
    start a new engine on the same database, return the finished deployment."""
    eps = [f"{prefix}{i}" for i in range(6)]
    for e in eps:
        fleet.add(e, delay=0.05)
    eng = make_engine_for(db, fleet)
    dep = create(db, artifact_id=artifact_id, endpoints=eps, max_concurrent=3)
    await eng.start()

    def reached() -> bool:
        states = [t["state"] for t in service.deployment_view(db, dep.id)["targets"]]
        return any(s in mid_way for s in states) and "succeeded" in states
    await until(reached)  # stop the "process" while some targets are mid-way
    await eng.stop()
    await asyncio.sleep(0.3)  # devices finish whatever they were told meanwhile
    eng2 = make_engine_for(db, fleet)
    await eng2.start()
    try:
        return await wait_state(db, dep.id, FINAL)
    finally:
        await eng2.stop()


async def test_restart_resumes_targets_in_flight_without_updating_any_device_twice(db, fleet):  # type: ignore[no-untyped-def]
    view = await stop_mid_way_and_restart(db, fleet, 1, "d",
                                          {"transferring", "transferred", "updating"})
    assert [t["state"] for t in view["targets"]] == ["succeeded"] * 6
    assert [d.fw_updates for d in fleet.devices.values()] == [1] * 6
    assert all(t["applied"] <= 1 for t in view["targets"])


async def test_sota_installs_activates_and_checks_model_version_and_sha(db, fleet):  # type: ignore[no-untyped-def]
    d = fleet.add("m")
    view = await deploy_and_wait(db, fleet, artifact_id=2, endpoints=["m"])
    (t,) = view["targets"]
    assert t["state"] == "succeeded" and t["applied"] == 1
    assert d.slot_versions[d.active_slot] == "2.0.0" and d.slot_shas[d.active_slot] == WASM_SHA
    assert d.writes == [("/9/0/3", f"coap://127.0.0.1:5683/fw/{SOTA_SHA}")]


async def test_sota_reads_the_model_object_only_at_the_first_look_and_after_activate(db, fleet):  # type: ignore[no-untyped-def]
    fleet.add("m")
    view = await deploy_and_wait(db, fleet, artifact_id=2, endpoints=["m"])
    assert view["targets"][0]["state"] == "succeeded"
    assert fleet.reads_of[Path.of(33100, 0)] == 2


async def test_an_observed_device_is_not_read_on_every_quiet_poll(db, fleet):  # type: ignore[no-untyped-def]
    fleet.add("stuck", stall=True)  # the download never ends, and nothing is notified
    eng = make_engine_for(db, fleet)  # poll 0.05 s
    dep = create(db, artifact_id=2, endpoints=["stuck"])
    await eng.start()
    try:
        await until(lambda: service.deployment_view(db, dep.id)["targets"][0]["state"]
                    == "transferring")
        await until(lambda: ("stuck", Path.of(9, 0, 7)) in fleet.observing)
        before = fleet.reads
        await asyncio.sleep(1.0)  # 20 polls: a read per QUIET_POLLS (5) of them, not per poll
        quiet_reads = fleet.reads - before
        fleet.waiter.poke("stuck")  # a notification: read at once
        await until(lambda: fleet.reads > before + quiet_reads, timeout=0.5 * 5)
    finally:
        await eng.stop()
    assert 1 <= quiet_reads <= 6


async def test_an_event_during_a_read_ends_the_next_wait_at_once() -> None:
    waiter = EndpointWaiter()
    mark = waiter.mark("d0")  # the driver reads the device ...
    waiter.poke("d0")  # ... and a notification arrives meanwhile
    t0 = time.monotonic()
    assert await waiter.wait("d0", 5.0, since=mark) is True
    assert time.monotonic() - t0 < 1.0
    assert await waiter.wait("d0", 0.05, since=waiter.mark("d0")) is False


async def test_sota_signature_failure_reports_update_result_53(db, fleet):  # type: ignore[no-untyped-def]
    d = fleet.add("m", download_result=53)
    view = await deploy_and_wait(db, fleet, artifact_id=2, endpoints=["m"], failure_threshold=1.0)
    (t,) = view["targets"]
    assert t["state"] == "failed" and t["result"] == 53 and "integrity" in t["reason"]
    assert d.active_slot == 0 and d.sw_installs == 0


async def test_ed25519_sota_package_fails_at_once_on_firmware_devices_and_installs_elsewhere(
        db, fleet):  # type: ignore[no-untyped-def]
    zephyr = fleet.add("zephyr", runtime="WAMR interpreter")
    sim = fleet.add("sim")
    view = await deploy_and_wait(db, fleet, artifact_id=4, endpoints=["zephyr", "sim"],
                                 failure_threshold=1.0)
    by_ep = {t["endpoint"]: t for t in view["targets"]}
    assert by_ep["zephyr"]["state"] == "failed"
    assert "ES256 (P-256) packages only" in by_ep["zephyr"]["reason"]
    assert "EdDSA (Ed25519)" in by_ep["zephyr"]["reason"]
    assert zephyr.writes == [] and zephyr.sw_installs == 0  # nothing was sent
    assert by_ep["sim"]["state"] == "succeeded" and sim.slot_versions[sim.active_slot] == "2.0.0"


def test_bad_deployment_requests_are_refused_with_a_reason(db):  # type: ignore[no-untyped-def]
    bad = [
        dict(artifact_id=1),  # no targets
        dict(artifact_id=1, endpoints=["a"], tag="t"),
        dict(artifact_id=1, endpoints=[]),
        dict(artifact_id=1, endpoints=["a", "a"]),
        dict(artifact_id=1, endpoints=["a"], stages=[10, 5, 100]),
        dict(artifact_id=1, endpoints=["a"], stages=[10, 50]),
        dict(artifact_id=1, endpoints=["a"], max_concurrent=0),
        dict(artifact_id=1, endpoints=["a"], failure_threshold=1.5),
        dict(artifact_id=99, endpoints=["a"]),
        dict(artifact_id=3, endpoints=["a"]),  # a raw model is not deployable
        dict(artifact_id=1, tag="nobody"),
    ]
    for kw in bad:
        with pytest.raises(InvalidDeployment) as e:
            create(db, **kw)
        assert e.value.message
    assert service.list_deployments(db) == []


def test_tags_select_targets(db):  # type: ignore[no-untyped-def]
    service.set_tags(db, "a", ["lab", "eu"])
    service.set_tags(db, "b", ["lab"])
    service.set_tags(db, "c", ["us"])
    assert service.get_tags(db, "a") == ["eu", "lab"]
    dep = create(db, artifact_id=1, tag="lab")
    assert [t["endpoint"] for t in service.deployment_view(db, dep.id)["targets"]] == ["a", "b"]
    with pytest.raises(InvalidDeployment):
        service.set_tags(db, "a", ["bad tag!"])


async def test_a_retry_waits_for_the_download_in_progress_instead_of_sending_again(db, fleet):  # type: ignore[no-untyped-def]
    d = fleet.add("slow-dl", delay=0.4, update_delay=0.01)
    view = await deploy_and_wait(db, fleet, artifact_id=1, endpoints=["slow-dl"], timeout=0.25,
                                 retries=2)
    (t,) = view["targets"]
    assert t["state"] == "succeeded" and t["attempt"] >= 1, t
    assert d.writes == [("/5/0/1", f"coap://127.0.0.1:5683/fw/{FW_SHA}")] and d.fw_updates == 1


async def test_a_foreign_downloaded_package_is_reset_before_ours_is_sent(db, fleet):  # type: ignore[no-untyped-def]
    d = fleet.add("foreign", fw_state=2, fw_pkg_version="0.9.0")
    d._pending = FW_SHA
    view = await deploy_and_wait(db, fleet, artifact_id=1, endpoints=["foreign"])
    assert view["targets"][0]["state"] == "succeeded"
    assert [w[0] for w in d.writes] == ["/5/0/1", "/5/0/1"] and d.writes[0][1] == ""
    assert d.fw_updates == 1


async def test_sota_restart_mid_install_activates_once_and_installs_once(db, fleet):  # type: ignore[no-untyped-def]
    view = await stop_mid_way_and_restart(db, fleet, 2, "m", {"transferred", "updating"})
    assert [t["state"] for t in view["targets"]] == ["succeeded"] * 6
    assert [d.sw_installs for d in fleet.devices.values()] == [1] * 6
    assert all(d.slot_versions[d.active_slot] == "2.0.0" for d in fleet.devices.values())


async def test_cancel_during_a_download_stops_it_on_the_device(db, fleet):  # type: ignore[no-untyped-def]
    d = fleet.add("dl", stall=True)
    eng = make_engine_for(db, fleet)
    dep = create(db, artifact_id=1, endpoints=["dl"])
    await eng.start()
    try:
        await until(lambda: d.fw_state == 1)
        service.cancel_deployment(db, dep.id)
        await until(lambda: d.cancelled == 1)
    finally:
        await eng.stop()
    assert d.fw_state == 0 and d.fw_result == 10 and d.fw_updates == 0
    assert service.deployment_view(db, dep.id)["targets"][0]["state"] == "cancelled"


async def test_write_of_a_target_in_flight_after_an_operator_cancel_is_refused_and_cancel_stays(
        db, fleet):  # type: ignore[no-untyped-def]
    fleet.add("d0", stall=True)  # the download never ends: the target stays transferring
    eng = make_engine_for(db, fleet)
    dep = create(db, artifact_id=1, endpoints=["d0"])
    await eng.start()
    try:
        await until(lambda: service.deployment_view(db, dep.id)["targets"][0]["state"]
                    == "transferring")
        with Session(db) as s:
            tid = s.exec(select(Target.id).where(Target.deployment_id == dep.id)).one()
        assert tid in eng._rows  # later writes of this target are guarded UPDATEs
        service.cancel_deployment(db, dep.id)
        # The target task writes before the reconciler gets to stop it: the guard misses,
        # the row is read again, and the state machine refuses to leave cancelled.
        with pytest.raises(InvalidTransition):
            eng._write_target(tid, TargetState.TRANSFERRING, progress=0.5)
        view = service.deployment_view(db, dep.id)
    finally:
        await eng.stop()
    assert view["targets"][0]["state"] == "cancelled"
    assert view["targets"][0]["progress"] != 0.5
