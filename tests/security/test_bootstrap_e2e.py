"""Bootstrap end to end: a simulated device that has only bootstrap credentials bootstraps over
DTLS, then registers over DTLS with what it was given; refusals and failures are events."""

from __future__ import annotations

import asyncio

import aiocoap

from .conftest import KEY, SecureEnv, eventually
from .test_refusals import client


async def test_device_with_only_bootstrap_credentials_bootstraps_then_registers_over_dtls(
        senv: SecureEnv) -> None:
    senv.server.credentials.set_bootstrap("*", {"security_mode": "psk", "lifetime": 90})
    senv.provision("bs-1", "bs-1-factory", purpose="bootstrap")
    dev = await senv.device("bs-1", server=senv.coaps_uri, bootstrap=senv.coaps_uri,
                            psk_identity="bs-1-factory", psk_key=KEY)
    assert dev.bootstraps == 1
    (ev,) = senv.kinds("bootstrapped", "bs-1")
    assert ev.data["security"] == "psk" and ev.data["server_uri"] == senv.coaps_uri
    # The server generated the DM credential, wrote it to /0, and the device registered with it.
    dm = senv.server.credentials.get("bs-1", "dm")
    assert dm is not None and dm.psk_identity == "bs-1"
    (sec,) = [r for r in dev.objects[0].data.values() if not r[1]]
    assert sec[0] == senv.coaps_uri and sec[2] == 0 and sec[3] == b"bs-1" and sec[5] == dm.key
    # Only the accounts were deleted (a Delete of / would take the device's application
    # instances with it, as the Zephyr client does), and the Bootstrap-Server account survived.
    assert [n for n in dev.notes if n.startswith("bootstrap delete")] == \
        ["bootstrap delete /0", "bootstrap delete /1"]
    assert [r[3] for r in dev.objects[0].data.values() if r[1]] == [b"bs-1-factory"]
    assert dev.objects[1].data[0][1] == 90 and dev.objects[1].data[0][0] == sec[10]
    reg = senv.server.registrations.get("bs-1")
    assert reg.security == "psk" and reg.lifetime == 90
    # The bootstrap identity itself may not register (it may only bootstrap).
    ctx = await client(senv.coaps_uri, b"bs-1-factory", KEY)
    try:
        msg = aiocoap.Message(code=aiocoap.POST, uri=f"{senv.coaps_uri}/rd", payload=b"</3/0>",
                              content_format=40)
        msg.opt.uri_query = ("ep=bs-1",)
        resp = await asyncio.wait_for(ctx.request(msg).response, 8)
        assert resp.code == aiocoap.FORBIDDEN and b"bootstrap credential" in resp.payload
    finally:
        await ctx.shutdown()


async def test_per_endpoint_configuration_wins_over_the_template(senv: SecureEnv) -> None:
    senv.server.credentials.set_bootstrap("*", {"security_mode": "psk"})
    senv.server.credentials.set_bootstrap("bs-2", {"security_mode": "psk", "psk_identity": "given-2",
                                                   "psk_key_hex": "11" * 16, "short_server_id": 7,
                                                   "binding": "UQ"})
    senv.provision("bs-2", "bs-2-factory", purpose="bootstrap")
    dev = await senv.device("bs-2", bootstrap=senv.coaps_uri, psk_identity="bs-2-factory",
                            psk_key=KEY)
    (sec,) = [r for r in dev.objects[0].data.values() if not r[1]]
    assert sec[3] == b"given-2" and sec[5] == bytes([0x11] * 16) and sec[10] == 7
    assert dev.objects[1].data[0][7] == "UQ"
    assert senv.server.registrations.get("bs-2").queue_mode


async def test_plain_bootstrap_never_hands_out_a_key_but_nosec_is_allowed(senv: SecureEnv) -> None:
    senv.server.credentials.set_bootstrap("*", {"security_mode": "psk"})
    dev = await senv.device("bs-plain", bootstrap=senv.coap_uri, server=senv.coap_uri, wait=False)
    (ev,) = await eventually(lambda: senv.kinds("bootstrap_failed", "bs-plain"))
    assert ev.data["step"] == "request" and "PSK in clear" in ev.data["reason"]
    assert senv.server.credentials.get("bs-plain", "dm") is None
    # With a NoSec configuration for it, the same device (retrying) bootstraps and registers.
    senv.server.credentials.set_bootstrap("bs-plain", {"security_mode": "nosec"})
    await asyncio.wait_for(dev.registered.wait(), 20)
    assert senv.server.registrations.get("bs-plain").security == "none"
    assert senv.kinds("bootstrapped", "bs-plain")[0].data["server_uri"] == senv.coap_uri


async def test_device_refusing_a_write_is_a_failure_event_and_it_can_retry(senv: SecureEnv) -> None:
    from lwm2m_server.sim.bootstrap import BootstrapSite

    senv.server.credentials.set_bootstrap("*", {"security_mode": "psk"})
    senv.provision("bs-3", "bs-3-factory", purpose="bootstrap")
    original = BootstrapSite._write
    refused = []

    def refuse_once(self, request, path):  # type: ignore[no-untyped-def]
        if not refused:
            refused.append(path)
            return aiocoap.Message(code=aiocoap.NOT_FOUND, payload=b"flash full")
        return original(self, request, path)

    BootstrapSite._write = refuse_once  # type: ignore[method-assign]
    try:
        dev = await senv.device("bs-3", bootstrap=senv.coaps_uri, psk_identity="bs-3-factory",
                                psk_key=KEY, wait=False, bootstrap_wait=2.0)
        (ev,) = await eventually(lambda: senv.kinds("bootstrap_failed", "bs-3"))
        assert ev.data["step"].startswith("Bootstrap-Write /0/") and "4.04" in ev.data["reason"]
        assert "flash full" in ev.data["reason"]
        # The device never gets its Finish; after its wait it asks again and succeeds.
        await asyncio.wait_for(dev.registered.wait(), 30)
    finally:
        BootstrapSite._write = original  # type: ignore[method-assign]
    assert senv.server.registrations.get("bs-3").security == "psk"
    assert len(senv.kinds("bootstrapped", "bs-3")) == 1


async def test_bootstrap_over_dtls_needs_the_endpoints_own_bootstrap_identity(senv: SecureEnv) -> None:
    senv.server.credentials.set_bootstrap("*", {"security_mode": "psk"})
    senv.provision("bs-4", "bs-4-factory", purpose="bootstrap")
    ctx = await client(senv.coaps_uri, b"bs-4-factory", KEY)
    try:
        msg = aiocoap.Message(code=aiocoap.POST, uri=f"{senv.coaps_uri}/bs")
        msg.opt.uri_query = ("ep=bs-other",)
        resp = await asyncio.wait_for(ctx.request(msg).response, 8)
    finally:
        await ctx.shutdown()
    assert resp.code == aiocoap.FORBIDDEN and b"not the bootstrap credential" in resp.payload
    assert senv.server.credentials.get("bs-other", "dm") is None


async def test_device_taking_only_senml_json_gets_its_instances_in_senml_json(senv: SecureEnv) -> None:
    """Like Wakaama's default build: TLV and SenML CBOR answered with 4.00 Bad Request."""
    from lwm2m_server.sim.bootstrap import BootstrapSite

    senv.server.credentials.set_bootstrap("*", {"security_mode": "psk"})
    senv.provision("bs-json", "bs-json-factory", purpose="bootstrap")
    original = BootstrapSite._write
    seen: list[int] = []

    def json_only(self, request, path):  # type: ignore[no-untyped-def]
        seen.append(int(request.opt.content_format))
        if int(request.opt.content_format) != 110:
            return aiocoap.Message(code=aiocoap.BAD_REQUEST, payload=b"unsupported format")
        return original(self, request, path)

    BootstrapSite._write = json_only  # type: ignore[method-assign]
    try:
        await senv.device("bs-json", bootstrap=senv.coaps_uri, psk_identity="bs-json-factory",
                          psk_key=KEY)
    finally:
        BootstrapSite._write = original  # type: ignore[method-assign]
    # /0 went TLV, SenML CBOR, SenML JSON; /1 straight in the format that worked.
    assert seen == [11542, 112, 110, 110]
    assert senv.server.registrations.get("bs-json").security == "psk"


async def test_separate_bootstrap_port_serves_only_bs_and_the_device_then_registers_on_coaps(
        tmp_path, signing_key, example_model_wasm) -> None:  # type: ignore[no-untyped-def]
    from .conftest import start_secure, stop_secure

    env = await start_secure(tmp_path, signing_key, example_model_wasm, coaps_bootstrap_port=0)
    try:
        bs_uri = f"coaps://127.0.0.1:{env.server.coaps_bootstrap_port}"
        assert env.server.coaps_bootstrap_port not in (None, env.server.coaps_port)
        env.server.credentials.set_bootstrap("*", {"security_mode": "psk"})
        env.provision("bs-port", "bs-port-factory", purpose="bootstrap")
        env.provision("dm-only", "dm-only-id")
        # A DM identity on the bootstrap port cannot register there.
        ctx = await client(bs_uri, b"dm-only-id", KEY)
        try:
            msg = aiocoap.Message(code=aiocoap.POST, uri=f"{bs_uri}/rd", payload=b"</3/0>",
                                  content_format=40)
            msg.opt.uri_query = ("ep=dm-only",)
            resp = await asyncio.wait_for(ctx.request(msg).response, 8)
            assert resp.code == aiocoap.FORBIDDEN and b"bootstrap interface (/bs) only" in resp.payload
        finally:
            await ctx.shutdown()
        dev = await env.device("bs-port", server=env.coaps_uri, bootstrap=bs_uri,
                               psk_identity="bs-port-factory", psk_key=KEY)
        assert dev.bootstraps == 1 and dev.server_uri == env.coaps_uri
        reg = env.server.registrations.get("bs-port")
        assert reg.security == "psk"
    finally:
        await stop_secure(env)
