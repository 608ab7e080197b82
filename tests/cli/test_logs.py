"""The server's log (``--log-format json --access-log``): one line per registration event,
deployment and target transition; request ids from a REST call to the device request it
caused; no tokens."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from typing import Any

from .conftest import Server


def wait_for_line(server: Server, check: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in server.log_lines():
            if check(line):
                return line
        time.sleep(0.2)
    raise AssertionError("no such log line:\n" + server.log.read_text()[-3000:])


def event(kind: str, endpoint: str | None = None) -> Any:
    return lambda line: line.get("event") == kind and (endpoint is None
                                                       or line.get("endpoint") == endpoint)


def test_a_line_for_each_registration_event(server: Server) -> None:
    short = server.simulate(1, "short-", "--lifetime", "4")
    kept = server.simulate(1, "kept-", "--lifetime", "4")
    reg = wait_for_line(server, event("registered", "short-0000"))
    assert reg["level"] == "info" and reg["logger"] == "lwm2m_server.events"
    assert reg["lifetime"] == 4 and "registered short-0000" in reg["message"]
    wait_for_line(server, event("registered", "kept-0000"))
    # The devices update before their lifetime ends.
    wait_for_line(server, event("updated", "kept-0000"))
    kept.send_signal(signal.SIGTERM)  # stops and de-registers
    wait_for_line(server, event("deregistered", "kept-0000"))
    short.kill()  # gone without a word: its registration expires
    expired = wait_for_line(server, event("expired", "short-0000"))
    assert "expired short-0000" in expired["message"]


def test_deployment_and_target_transitions(server: Server) -> None:
    (server.workdir / "raw.bin").write_bytes(b"\x01" * 2000)
    added = server.cli("artifact", "add", str(server.workdir / "raw.bin"), "--kind", "firmware",
                       "--name", "raw", "--version", "1.0.0")
    assert added.returncode == 0, added.stderr
    art = json.loads(added.stdout)["id"]
    done = server.cli("deploy", "create", "--artifact", str(art), "--endpoints", "nobody-1",
                      "--retries", "0", "--wait", "--json")
    dep = json.loads(done.stdout)["id"]
    created = wait_for_line(server, lambda l: l.get("event") == "deployment"
                            and l.get("deployment_id") == dep and l.get("state") == "running")
    assert created.get("request_id")  # the REST call that created it
    failed = wait_for_line(server, lambda l: l.get("event") == "deployment_target"
                           and l.get("deployment_id") == dep and l.get("state") == "failed")
    assert failed["level"] == "warning" and failed["previous"] == "pending"
    assert "nobody-1" in failed["message"] and "offline" in failed["message"]
    wait_for_line(server, lambda l: l.get("event") == "deployment" and l.get("deployment_id") == dep
                  and l.get("state") == "completed_with_failures")


def test_request_id_ties_the_rest_call_to_the_device_request(server: Server) -> None:
    server.simulate(1, "rid-")
    server.wait_for_devices({"rid-0000"})
    req = urllib.request.Request(f"{server.url}/api/v1/devices/rid-0000/data/3/0/0",
                                 headers={"Authorization": f"Bearer {server.token}",
                                          "X-Request-Id": "pipeline-42"})
    with urllib.request.urlopen(req, timeout=20) as resp:
        assert resp.headers["X-Request-Id"] == "pipeline-42"
    device = wait_for_line(server, lambda l: l.get("logger") == "lwm2m_server.protocol.operations"
                           and l.get("request_id") == "pipeline-42")
    assert device["endpoint"] == "rid-0000" and device["operation"] == "read"
    assert device["outcome"] == "ok" and device["level"] == "info"
    access = wait_for_line(server, lambda l: l.get("logger") == "lwm2m_server.access"
                           and l.get("request_id") == "pipeline-42")
    assert access["status"] == 200 and access["path"] == "/api/v1/devices/rid-0000/data/3/0/0"
    # A request id that is not a short printable word is replaced, not echoed.
    req = urllib.request.Request(f"{server.url}/healthz", headers={"X-Request-Id": "a b\tc"})
    with urllib.request.urlopen(req, timeout=20) as resp:
        assert resp.headers["X-Request-Id"] not in ("a b\tc", "")


def test_every_line_is_json_and_no_token_appears(server: Server) -> None:
    text = server.log.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines and all(json.loads(line)["message"] is not None for line in lines)
    assert server.token not in text
    assert "Bearer" not in text


def test_json_lines_keep_their_own_keys_and_drop_secret_fields() -> None:
    import logging

    from lwm2m_server.logs import REQUEST_ID, _JsonFormatter, _RequestIdFilter, redact

    assert redact({"psk_key": "00", "token": "t", "Secret": "s", "password": "p",
                   "endpoint": "a", "state": "ok"}) == {"endpoint": "a", "state": "ok"}
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    record.fields = {"message": "forged", "level": "debug", "endpoint": "ep-1"}
    reset = REQUEST_ID.set("rid-7")
    try:
        _RequestIdFilter().filter(record)
    finally:
        REQUEST_ID.reset(reset)
    line = json.loads(_JsonFormatter().format(record))
    assert line["message"] == "hello there" and line["level"] == "info"
    assert line["endpoint"] == "ep-1" and line["request_id"] == "rid-7"
