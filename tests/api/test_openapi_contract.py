"""The OpenAPI document and the API agree: schemathesis against /openapi.json of a running server
(bounded in examples and time), and every error the API answers is documented with its body."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys

import pytest

from lwm2m_server.app import create_app
from lwm2m_server.config import Settings
from lwm2m_server.runner import Runner

MAX_EXAMPLES = int(os.environ.get("LWM2M_SCHEMATHESIS_EXAMPLES", "4"))
MAX_SECONDS = int(os.environ.get("LWM2M_SCHEMATHESIS_SECONDS", "45"))


def test_every_api_operation_documents_its_errors_with_the_error_body() -> None:
    spec = create_app(Settings(environment="development")).openapi()
    error = spec["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"detail", "error"}
    for path, ops in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, op in ops.items():
            responses = op["responses"]
            assert "422" not in responses or path.startswith(
                ("/api/v1/deployments", "/api/v1/webhooks", "/api/v1/artifacts",
                 "/api/v1/devices/{endpoint}/tags")), (method, path)
            for code in ("400", "401", "403"):
                body = responses[code]["content"]["application/json"]
                assert body["schema"] == {"$ref": "#/components/schemas/Error"}, (method, path, code)
                assert body["examples"], (method, path, code)
            if "requestBody" in op:
                assert "413" in responses, (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            ok = [c for c in responses if c.startswith("2")]
            assert ok, (method, path)
    data = spec["paths"]["/api/v1/devices/{endpoint}/data/{path}"]["get"]["responses"]
    assert {"202", "409", "502", "504"} <= set(data)
    assert spec["paths"]["/api/v1/devices/{endpoint}"]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"] == {"$ref": "#/components/schemas/Device"}


@pytest.mark.skipif(shutil.which("schemathesis") is None and shutil.which("st") is None,
                    reason="schemathesis is part of the test extra: pip install -e .[test]")
async def test_schemathesis_finds_no_disagreement_and_no_server_error(tmp_path) -> None:
    token = secrets.token_urlsafe(32)
    settings = Settings(coap_host="127.0.0.1", coap_port=0, http_host="127.0.0.1", http_port=0,
                        db_url=f"sqlite:///{tmp_path / 'st.db'}", artifacts_dir=tmp_path / "art",
                        admin_token=token, environment="development", request_timeout=1.0,
                        read_on_register=False, log_level="warning")
    runner = Runner(settings)
    await runner.start()
    try:
        exe = shutil.which("schemathesis") or shutil.which("st")
        proc = await asyncio.create_subprocess_exec(
            exe, "run", f"http://127.0.0.1:{runner.http_port}/openapi.json",
            "-H", f"Authorization: Bearer {token}",
            "--checks", "all",
            # The API refuses more than a JSON schema can say (LwM2M paths, tag characters, an
            # artifact that must verify): a schema-valid request may rightly get a 4xx.
            "--exclude-checks", "positive_data_acceptance",
            "--max-examples", str(MAX_EXAMPLES), "--max-time", str(MAX_SECONDS),
            "--request-timeout", "5", "--suppress-health-check", "all", "--workers", "1",
            "--seed", "1", "--no-color",
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""})
        out, _ = await asyncio.wait_for(proc.communicate(), MAX_SECONDS + 120)
    finally:
        await runner.stop()
    text = out.decode(errors="replace")
    sys.stdout.write(text[-3000:])
    assert proc.returncode == 0, text[-6000:]
    assert "Server error" not in text
