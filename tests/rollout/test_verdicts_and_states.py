"""Verdicts an operator can trust, against the fake device port: a device that finishes between
two reads, the per-deployment verify rule, downgrades, the pause race, observations that end
with their target, final states and retry."""

from __future__ import annotations

import asyncio

import pytest

from lwm2m_server.events import EventBus
from lwm2m_server.model import Path
from lwm2m_server.rollout import service
from lwm2m_server.rollout.errors import DeploymentConflict, InvalidDeployment

from .test_engine import FINAL, create, lookup, make_engine_for, until, wait_state
from .test_engine import db, fleet  # noqa: F401 - the fixtures


class Recorder:
    """Every event of a bus, collected by a task while the test runs."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list = []
        self._sub = bus.subscribe()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for ev in self._sub:
            self.events.append(ev)

    def of(self, kind: str) -> list:
        return [e for e in self.events if e.kind == kind]

    async def close(self) -> None:
        await asyncio.sleep(0.05)  # let the last events in
        self._task.cancel()
        self._sub.close()


async def run_until_final(db, fleet, dep_id: int, bus: EventBus | None = None, timeout: float = 30):  # type: ignore[no-untyped-def]
    eng = make_engine_for(db, fleet, events=bus)
    await eng.start()
    try:
        return await wait_state(db, dep_id, FINAL, timeout=timeout)
    finally:
        await eng.stop()


# --- the firmware race ---------------------------------------------------------------------
async def test_a_device_finishing_between_the_version_read_and_the_state_read_succeeds(db, fleet):  # type: ignore[no-untyped-def]
    # The device answers the version read with its old version and finishes the update right
    # after; it leaves /5/0/7 empty, so only a consistent view of state and version can tell.
    for i in range(4):
        fleet.add(f"flip-{i}", fw_version="1.0.0", flip_on_version_read=True,
                  fills_pkg_version=False, update_delay=30)
    dep = create(db, artifact_id=1, endpoints=[f"flip-{i}" for i in range(4)], retries=0,
                 failure_threshold=1.0, timeout=20)
    view = await run_until_final(db, fleet, dep.id)
    assert view["state"] == "completed", view
    assert [t["state"] for t in view["targets"]] == ["succeeded"] * 4, view["targets"]
    assert all(d.fw_version == "1.1.10" and d.fw_updates == 1 for d in fleet.devices.values())


async def test_success_with_the_old_version_is_not_yet_and_the_timeout_says_why(db, fleet):  # type: ignore[no-untyped-def]
    # /3/0/3 holds an SDK version: under verify=version the contradiction is waited out, never
    # a verdict on one read; the timeout's reason names it.
    fleet.add("sdk", fw_version="1.0.0", sdk_version="zephyr-3.6", fills_pkg_version=False)
    dep = create(db, artifact_id=1, endpoints=["sdk"], retries=0, failure_threshold=1.0,
                 timeout=1.5)
    view = await run_until_final(db, fleet, dep.id)
    (t,) = view["targets"]
    assert view["state"] == "completed_with_failures" and t["state"] == "failed", t
    assert "timeout" in t["reason"] and "Update Result 1" in t["reason"], t["reason"]
    assert "'zephyr-3.6'" in t["reason"]


async def test_verify_result_accepts_update_result_1_whatever_3_0_3_says(db, fleet):  # type: ignore[no-untyped-def]
    fleet.add("sdk", fw_version="1.0.0", sdk_version="zephyr-3.6", fills_pkg_version=False)
    dep = create(db, artifact_id=1, endpoints=["sdk"], verify="result", timeout=10)
    assert service.deployment_view(db, dep.id)["verify"] == "result"
    view = await run_until_final(db, fleet, dep.id)
    (t,) = view["targets"]
    assert view["state"] == "completed" and t["state"] == "succeeded" and t["result"] == 1, t
    assert fleet.devices["sdk"].fw_updates == 1


async def test_verify_version_also_accepts_pkg_version_where_the_device_fills_it(db, fleet):  # type: ignore[no-untyped-def]
    fleet.add("sdk", fw_version="1.0.0", sdk_version="zephyr-3.6", fills_pkg_version=True)
    dep = create(db, artifact_id=1, endpoints=["sdk"], timeout=10)
    view = await run_until_final(db, fleet, dep.id)
    assert view["targets"][0]["state"] == "succeeded", view["targets"]


def test_verify_rule_is_checked_and_result_is_refused_for_sota(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidDeployment, match="verify must be version"):
        create(db, artifact_id=1, endpoints=["a"], verify="hash")
    with pytest.raises(InvalidDeployment, match="firmware only"):
        create(db, artifact_id=2, endpoints=["a"], verify="result")


# --- downgrades ----------------------------------------------------------------------------
async def test_a_downgrade_is_refused_per_target_unless_allowed(db, fleet):  # type: ignore[no-untyped-def]
    fleet.add("newer", fw_version="2.0.0")
    fleet.add("older", fw_version="1.0.0")
    dep = create(db, artifact_id=1, endpoints=["newer", "older"], failure_threshold=1.0)
    view = await run_until_final(db, fleet, dep.id)
    t = {x["endpoint"]: x for x in view["targets"]}
    assert t["newer"]["state"] == "failed" and "downgrade refused" in t["newer"]["reason"]
    assert "allow_downgrade" in t["newer"]["reason"] and t["newer"]["attempt"] == 0
    assert t["older"]["state"] == "succeeded"
    assert fleet.devices["newer"].fw_version == "2.0.0" and not fleet.devices["newer"].writes
    forced = create(db, artifact_id=1, endpoints=["newer"], allow_downgrade=True)
    view = await run_until_final(db, fleet, forced.id)
    assert view["targets"][0]["state"] == "succeeded" and fleet.devices["newer"].fw_version == "1.1.10"


async def test_a_sota_downgrade_is_refused(db, fleet):  # type: ignore[no-untyped-def]
    fleet.add("m", slot_versions=["3.0.0", ""])
    dep = create(db, artifact_id=2, endpoints=["m"], failure_threshold=1.0)
    view = await run_until_final(db, fleet, dep.id)
    (t,) = view["targets"]
    assert t["state"] == "failed" and "downgrade refused" in t["reason"] and "3.0.0" in t["reason"]
    assert fleet.devices["m"].sw_installs == 0


# --- the pause race --------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db(request, tmp_path):  # type: ignore[no-untyped-def]
    """The rollout database on SQLite and on PostgreSQL (a throwaway database)."""
    from lwm2m_server.store.db import init_db, make_engine
    from tests.support.postgres import temporary_database

    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'race.db'}")
        init_db(engine)
        yield engine
        engine.dispose()
        return
    with temporary_database("rollout_race_") as url:
        engine = make_engine(url)
        init_db(engine)
        yield engine
        engine.dispose()


async def test_after_pause_returns_no_pending_target_starts_a_transfer(any_db, fleet):  # type: ignore[no-untyped-def]
    db = any_db
    gate = asyncio.Event()
    eps = [f"p{i}" for i in range(4)]
    for ep in eps:
        fleet.add(ep, read_gate=gate)
    bus = EventBus()
    rec = Recorder(bus)
    dep = create(db, artifact_id=1, endpoints=eps, max_concurrent=4)
    eng = make_engine_for(db, fleet, events=bus)
    await eng.start()
    try:
        # Every target's driver is launched and inside its first read of the device.
        await until(lambda: fleet.waiting_reads >= 4)
        paused = service.pause_deployment(db, dep.id, events=bus)
        assert paused.state == "paused"
        view = service.deployment_view(db, dep.id)
        assert view["counts"]["pending"] == 4 and view["counts"]["transferring"] == 0
        mark = len(rec.events)
        gate.set()  # the devices answer now; the drivers would start their transfers here
        await until(lambda: eng.running_targets == 0)
        await asyncio.sleep(0.3)
        view = service.deployment_view(db, dep.id)
        assert view["state"] == "paused" and view["counts"]["pending"] == 4, view["counts"]
        started = [e for e in rec.events[mark:] if e.kind == "deployment_target"]
        assert started == [], [(e.endpoint, e.data["state"]) for e in started]
        assert all(not d.writes for d in fleet.devices.values())
        # Resume: every target runs, each device is updated once.
        service.resume_deployment(db, dep.id, events=bus)
        view = await wait_state(db, dep.id, FINAL)
        assert view["state"] == "completed"
        assert all(d.fw_updates == 1 and len(d.writes) == 1 for d in fleet.devices.values())
    finally:
        await eng.stop()
        await rec.close()


# --- observations ----------------------------------------------------------------------------
async def test_the_rollout_cancels_its_observations_when_targets_end(db, fleet):  # type: ignore[no-untyped-def]
    fleet.add("fw", fw_version="1.0.0", update_delay=0.3)
    fleet.add("m")
    fleet.add("gone", fw_version="1.0.0", stall=True)
    d1 = create(db, artifact_id=1, endpoints=["fw"])
    d2 = create(db, artifact_id=2, endpoints=["m"])
    d3 = create(db, artifact_id=1, endpoints=["gone"])
    eng = make_engine_for(db, fleet)
    await eng.start()
    try:
        await until(lambda: ("fw", Path.of(5, 0, 3)) in fleet.observing)
        await wait_state(db, d1.id, FINAL)
        await wait_state(db, d2.id, FINAL)
        await until(lambda: ("gone", Path.of(5, 0, 3)) in fleet.observing)
        service.cancel_deployment(db, d3.id)
        await until(lambda: not fleet.observing)
    finally:
        await eng.stop()
    assert service.deployment_view(db, d2.id)["state"] == "completed"


# --- final states and retry -----------------------------------------------------------------
async def test_failed_targets_end_in_completed_with_failures_and_retry_runs_them_again(any_db, fleet):  # type: ignore[no-untyped-def]
    db = any_db
    fleet.add("ok", fw_version="1.0.0")
    bad = fleet.add("bad", fw_version="1.0.0", download_result=5)
    bus = EventBus()
    rec = Recorder(bus)
    dep = create(db, artifact_id=1, endpoints=["ok", "bad"], failure_threshold=1.0)
    eng = make_engine_for(db, fleet, events=bus)
    await eng.start()
    try:
        view = await wait_state(db, dep.id, FINAL)
        assert view["state"] == "completed_with_failures", view
        assert "1 succeeded, 1 failed" in view["reason"]
        assert view["current_stage"] == len(view["stages"]) - 1
        assert [e.data["state"] for e in rec.of("deployment")][-1] == "completed_with_failures"
        with pytest.raises(DeploymentConflict):
            service.resume_deployment(db, dep.id)  # resume is for paused deployments
        bad.download_result = None  # the operator fixed the device
        mark = len(rec.events)
        out = service.retry_deployment(db, dep.id, events=bus, lookup=lookup)
        assert set(out) == set(service.deployment_view(db, dep.id))  # the same view dict
        assert out["state"] == "running" and "retry of 1 failed" in out["reason"]
        t = {x["endpoint"]: x for x in out["targets"]}
        assert t["ok"]["state"] == "succeeded"
        assert t["bad"]["state"] in ("pending", "transferring") and t["bad"]["attempt"] == 0
        await asyncio.sleep(0.05)  # the recorder's turn
        retried = [e for e in rec.events[mark:] if e.kind == "deployment_target"
                   and e.data.get("previous") == "failed"]
        assert [(e.endpoint, e.data["state"]) for e in retried] == [("bad", "pending")]
        view = await wait_state(db, dep.id, FINAL)
        assert view["state"] == "completed" and bad.fw_updates == 1
        assert fleet.devices["ok"].fw_updates == 1  # the succeeded target was left alone
        with pytest.raises(DeploymentConflict, match="is completed"):
            service.retry_deployment(db, dep.id, lookup=lookup)
    finally:
        await eng.stop()
        await rec.close()


def test_retry_needs_failed_targets_and_no_cancel(db) -> None:  # type: ignore[no-untyped-def]
    dep = create(db, artifact_id=1, endpoints=["a"])
    with pytest.raises(DeploymentConflict, match="no failed targets"):
        service.retry_deployment(db, dep.id, lookup=lookup)
    service.cancel_deployment(db, dep.id)
    with pytest.raises(DeploymentConflict, match="cancelled"):
        service.retry_deployment(db, dep.id, lookup=lookup)


async def test_a_stage_of_34_percent_of_3_devices_releases_one(db, fleet):  # type: ignore[no-untyped-def]
    for i in range(3):
        fleet.add(f"s{i}", fw_version="1.0.0", update_delay=0.2)
    dep = create(db, artifact_id=1, endpoints=["s0", "s1", "s2"], stages=[34, 100])
    view = service.deployment_view(db, dep.id)
    assert view["stage_sizes"] == [1, 3] and view["released"] == 1 and view["total"] == 3
    eng = make_engine_for(db, fleet)
    await eng.start()
    try:
        await until(lambda: fleet.devices["s0"].writes)
        await asyncio.sleep(0.1)
        assert not fleet.devices["s1"].writes and not fleet.devices["s2"].writes
        view = await wait_state(db, dep.id, FINAL)
    finally:
        await eng.stop()
    assert view["state"] == "completed" and view["current_stage"] == 1 and view["released"] == 3



def test_a_pass_that_read_every_target_done_does_not_end_a_deployment_retried_meanwhile(db, fleet):  # type: ignore[no-untyped-def]
    from sqlalchemy import update
    from sqlmodel import Session, select

    from lwm2m_server.rollout.engine import _TARGET_COLUMNS
    from lwm2m_server.rollout.tables import Deployment, Target

    dep = create(db, artifact_id=1, endpoints=["a"])
    with Session(db) as s:
        s.execute(update(Target).values(state="failed", reason="x"))
        s.commit()
    with Session(db, expire_on_commit=False) as s:  # what a reconcile pass read
        stale_dep = s.get(Deployment, dep.id)
        stale = list(s.exec(select(*_TARGET_COLUMNS).where(Target.deployment_id == dep.id)).all())
    assert service.retry_deployment(db, dep.id, lookup=lookup)["counts"]["pending"] == 1
    eng = make_engine_for(db, fleet)
    with Session(db, expire_on_commit=False) as s:
        eng._reconcile(s, stale_dep, stale)
    view = service.deployment_view(db, dep.id)
    assert view["state"] == "running" and view["counts"]["pending"] == 1, view
