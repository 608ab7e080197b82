"""The pure parts: the security policy's rules, bootstrap configuration and instances, the
ClientHello check, the key box."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lwm2m_server.coap.dtls import _client_hello
from lwm2m_server.codecs import codec_for
from lwm2m_server.model import Path, build, default_registry
from lwm2m_server.protocol.bootstrap import (
    BootstrapConfig,
    BootstrapError,
    config_from_json,
    free_instance,
    instances_in_links,
    security_values,
    server_values,
)
from lwm2m_server.protocol.errors import RegistrationError
from lwm2m_server.protocol.security import PLAIN, Authentication, SecurityPolicy
from lwm2m_server.security.keybox import KeyBox, SecretError


@dataclass
class Reg:
    endpoint: str
    security: str


def psk(identity: str, endpoint: str, purpose: str = "dm") -> Authentication:
    return Authentication("psk", identity, endpoint, purpose)


async def has(endpoint: str) -> bool:
    return endpoint.startswith("secure-")


async def refused(coro: object, text: str) -> None:
    with pytest.raises(RegistrationError) as e:
        await coro  # type: ignore[misc]
    assert e.value.coap_code == "4.03" and text in e.value.message


async def test_policy_binds_identity_to_endpoint_and_keeps_credentialed_endpoints_off_plain() -> None:
    p = SecurityPolicy(required=False, has_credentials=has)
    await p.check_register("open-1", PLAIN)
    await p.check_register("secure-1", psk("id-1", "secure-1"))
    await refused(p.check_register("secure-1", PLAIN), "has credentials")
    await refused(p.check_register("secure-2", psk("id-1", "secure-1")), "belongs to endpoint 'secure-1'")
    await refused(p.check_register("secure-1", psk("bs-1", "secure-1", "bootstrap")), "may only bootstrap")
    await p.check_same_channel(Reg("secure-1", "psk"), psk("id-1", "secure-1"), "Update")
    await refused(p.check_same_channel(Reg("secure-1", "psk"), PLAIN, "Update"), "channel it registered on")
    await refused(p.check_same_channel(Reg("secure-1", "psk"), psk("id-2", "secure-2"), "Send"),
                  "may not Send")
    await refused(p.check_same_channel(Reg("open-1", "none"), psk("id-2", "open-1"), "Update"),
                  "channel it registered on")
    # A plain registration made before the endpoint got credentials may not carry on.
    await refused(p.check_same_channel(Reg("secure-3", "none"), PLAIN, "Update"), "register again over DTLS")
    required = SecurityPolicy(required=True, has_credentials=has)
    await refused(required.check_register("open-1", PLAIN), "DTLS only")
    await refused(required.check_same_channel(Reg("open-1", "none"), PLAIN, "Update"), "DTLS only")


def test_bootstrap_configuration_is_checked() -> None:
    assert config_from_json({}) == BootstrapConfig()
    cfg = config_from_json({"security_mode": "nosec", "server_uri": "coap://h:5683", "binding": "UQ"})
    assert cfg.security_mode == "nosec" and cfg.binding == "UQ"
    for bad, text in [({"security_mode": "rpk"}, "security_mode"),
                      ({"server_uri": "coap://h:5683"}, "coaps://"),
                      ({"short_server_id": 65535}, "short_server_id"),
                      ({"lifetime": 0}, "lifetime"), ({"binding": "T"}, "binding"),
                      ({"psk_identity": "x"}, "together"),
                      ({"psk_identity": "x", "psk_key_hex": "0g"}, "hexadecimal"),
                      ({"psk_identity": "x", "psk_key_hex": "00"}, "16..64 bytes"),
                      ({"extra": 1}, "unknown bootstrap settings")]:
        with pytest.raises(BootstrapError, match=text):
            config_from_json(bad)
    assert "psk_key_hex" not in BootstrapConfig(psk_identity="i", psk_key_hex="00" * 16).public_json()


def test_security_and_server_instances_encode_as_tlv_with_every_mandatory_resource() -> None:
    reg = default_registry()
    values = security_values(1, "coaps://h:5684", "psk", b"id", b"k" * 16, 3)
    node = build(values, Path.of(0, 1), reg)
    decoded = codec_for(11542).decode(codec_for(11542).encode(node, Path.of(0, 1), reg), Path.of(0, 1), reg)
    res = {r.id: r.value for r in decoded.resources.values()}  # type: ignore[union-attr]
    assert res == {0: "coaps://h:5684", 1: False, 2: 0, 3: b"id", 4: b"", 5: b"k" * 16, 10: 3}
    mandatory = {rid for rid, d in reg.get(0).resources.items() if d.mandatory}  # type: ignore[union-attr]
    assert mandatory <= set(res)
    srv = server_values(0, BootstrapConfig(short_server_id=3, lifetime=90, binding="UQ"))
    assert srv[Path.of(1, 0, 0)] == 3 and srv[Path.of(1, 0, 1)] == 90 and srv[Path.of(1, 0, 7)] == "UQ"


def test_discover_answer_and_free_instance() -> None:
    links = '</>;lwm2m="1.1",</0/0>,</0/2>;ssid=5,</1>,</3/0>'
    assert instances_in_links(links, 0) == {0, 2}
    assert instances_in_links(links, 1) == set()
    assert free_instance({0, 2}) == 1 and free_instance(set()) == 0


def test_client_hello_is_recognised_and_garbage_is_not() -> None:
    hello = bytes([22, 0xFE, 0xFD]) + bytes(10) + bytes([1]) + bytes(40)
    assert _client_hello(hello)
    assert not _client_hello(bytes([23, 0xFE, 0xFD]) + bytes(40))          # application data
    assert not _client_hello(bytes([22, 0xFE, 0xFD]) + bytes(10) + bytes([16]) + bytes(40))
    assert not _client_hello(hello[:20])


def test_keybox_refuses_a_tampered_or_foreign_ciphertext() -> None:
    box = KeyBox("s" * 8 + "0123456789abcdefghijklmnopqrstuv")
    sealed = box.seal(b"k" * 16, "ep", "dm", "id")
    assert box.open(sealed, "ep", "dm", "id") == b"k" * 16
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    for bad, ctx in ((tampered, ("ep", "dm", "id")), (sealed, ("ep", "bootstrap", "id")),
                     (b"\x02" + sealed[1:], ("ep", "dm", "id")), (b"", ("ep", "dm", "id"))):
        with pytest.raises(SecretError):
            box.open(bad, *ctx)
    assert box.seal(b"k" * 16, "ep", "dm", "id") != sealed  # a fresh nonce each time
