"""The console's view helpers: the model panel and firmware version from latest values, value
rows named by the object definitions, device-table filtering, deployment progress, times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from lwm2m_server.console.fleet import (
    ago,
    deployment_progress,
    device_rows,
    display,
    final_summary,
    firmware_version,
    model_panel,
    value_rows,
)
from lwm2m_server.model import ObjLnk, Path, default_registry

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def latest(values: dict[str, object]) -> dict[Path, tuple[object, datetime]]:
    return {Path.parse(p): (v, NOW) for p, v in values.items()}


MODEL = latest({"/3/0/3": "2.1.0", "/33100/0/0": 1, "/33100/0/1/0": "kws", "/33100/0/1/1": "vww",
                "/33100/0/2/0": "1.0.0", "/33100/0/2/1": "0.9.3", "/33100/0/3/1": "ab" * 32,
                "/33100/0/4": 17, "/33100/0/5": 912, "/33100/0/6": 3, "/33100/0/7": 0.5})


def test_model_panel_names_the_active_slot_and_its_model() -> None:
    panel = model_panel(MODEL)  # type: ignore[arg-type]
    assert panel is not None
    assert panel.active_slot == "B"
    assert (panel.active_name, panel.active_version) == ("vww", "0.9.3")
    assert panel.slots[0] == {"slot": "A", "name": "kws", "version": "1.0.0", "sha256": None}
    assert panel.slots[1]["sha256"] == "ab" * 32
    assert (panel.inference_count, panel.last_latency_us, panel.last_output) == (17, 912, 3)


def test_model_panel_is_none_without_model_values_and_tolerates_a_bad_active_slot() -> None:
    assert model_panel(latest({"/3/0/3": "1.0"})) is None  # type: ignore[arg-type]
    panel = model_panel(latest({"/33100/0/0": 7, "/33100/0/4": 1}))  # type: ignore[arg-type]
    assert panel is not None and panel.active_slot is None and panel.active_name is None


def test_firmware_version_comes_from_3_0_3() -> None:
    assert firmware_version(MODEL) == "2.1.0"  # type: ignore[arg-type]
    assert firmware_version({}) is None


def test_value_rows_are_in_path_order_and_named_by_the_definitions() -> None:
    rows = value_rows(latest({"/3/0/9": 80, "/3/0/0": "ACME", "/33100/0/1/1": "vww",  # type: ignore[arg-type]
                              "/4242/0/1": b"\x01\x02"}), default_registry())
    assert [(r.path, r.name, r.value) for r in rows] == [
        ("/3/0/0", "Manufacturer", "ACME"), ("/3/0/9", "Battery Level", "80"),
        ("/4242/0/1", "", "AQI="), ("/33100/0/1/1", "Slot Name [1]", "vww")]
    assert rows[1].units == "/100"


def test_display_shows_the_api_json_form_and_cuts_long_text() -> None:
    assert display(True) == "true"
    assert display(ObjLnk(3, 0)) == "3:0"
    assert display(b"\xff") == "/w=="
    assert display("x" * 500) == "x" * 197 + "..."


def test_device_rows_filter_by_text_in_endpoint_firmware_model_or_tag_and_by_tag() -> None:
    devices = [{"endpoint": "kitchen-1"}, {"endpoint": "garage-2"}]
    stores = {"kitchen-1": MODEL, "garage-2": {}}
    tags = {"garage-2": ["lab"]}

    def names(text: str | None = None, tag: str | None = None) -> list[str]:
        return [r.device["endpoint"] for r in device_rows(devices, stores.__getitem__, tags, text, tag)]

    assert names() == ["kitchen-1", "garage-2"]
    assert names("KITCHEN") == ["kitchen-1"]
    assert names("vww") == ["kitchen-1"]       # active model name
    assert names("2.1.0") == ["kitchen-1"]     # firmware version
    assert names("la") == ["garage-2"]         # tag text
    assert names(tag="lab") == ["garage-2"]
    assert names("kitchen", tag="lab") == []


def test_deployment_progress_counts_finished_targets() -> None:
    view = {"counts": {"pending": 1, "updating": 1, "succeeded": 5, "failed": 2, "cancelled": 1}}
    assert deployment_progress(view) == {"total": 10, "done": 8, "succeeded": 5, "failed": 2,
                                         "cancelled": 1, "percent": 80, "w_ok": 50.0,
                                         "w_fail": 20.0, "w_cancel": 10.0}
    assert deployment_progress({"counts": {}})["percent"] == 0


def test_a_cancelled_deployment_bar_shows_the_cancelled_share_not_an_empty_100_percent() -> None:
    progress = deployment_progress({"counts": {"cancelled": 4}})
    assert (progress["percent"], progress["w_ok"], progress["w_cancel"]) == (100, 0, 100.0)
    assert final_summary("cancelled", progress) == {
        "level": "off", "title": "Cancelled",
        "text": "0 of 4 succeeded before the cancel, 4 cancelled, 0 failed."}


def test_final_summary_tells_completed_from_completed_with_failures() -> None:
    done = deployment_progress({"counts": {"succeeded": 3}})
    mixed = deployment_progress({"counts": {"succeeded": 3, "failed": 1}})
    assert final_summary("running", done) is None
    assert final_summary("completed", done)["title"] == "Completed"  # type: ignore[index]
    for state in ("completed", "completed_with_failures"):
        summary = final_summary(state, mixed)
        assert summary is not None and summary["level"] == "warn"
        assert summary["text"].startswith("1 of 4 targets failed, 3 succeeded")


def test_ago_reads_naive_times_as_utc() -> None:
    assert ago(None) == "never"
    assert ago(NOW - timedelta(seconds=5), NOW) == "5 s ago"
    assert ago(NOW - timedelta(seconds=1), NOW) == "just now"
    assert ago((NOW - timedelta(hours=3)).replace(tzinfo=None).isoformat(), NOW) == "3 h ago"
    assert ago(NOW + timedelta(seconds=90), NOW) == "in 1 min"


def test_inference_vectors_become_execute_argument_zero() -> None:
    from lwm2m_server.api.errors import BadRequest
    from lwm2m_server.console.device_pages import execute_vector_args

    assert execute_vector_args("1.0, 0.5 0.2,0.1") == "0='1.0,0.5,0.2,0.1'"
    for bad in ("", "1, nan", "1,'2'", "inf"):
        with pytest.raises(BadRequest):
            execute_vector_args(bad)
