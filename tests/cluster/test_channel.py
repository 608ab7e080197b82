"""The cluster channel's payloads (cluster/channel.py), without a database: batching under
PostgreSQL's NOTIFY limit, and each process skipping its own payloads."""

from __future__ import annotations

from typing import Any

from lwm2m_server.cluster.channel import MAX_PAYLOAD, PgChannel, pack
from lwm2m_server.cluster.wire import dumps


def test_payloads_carry_the_sender_and_stay_under_the_limit() -> None:
    texts = [dumps({"t": "seen", "e": f"dev-{i}", "pad": "x" * 300}) for i in range(100)]
    payloads = pack(texts, prefix="node-a ")
    assert len(payloads) > 1
    assert all(p.startswith("node-a [") and len(p.encode()) <= MAX_PAYLOAD for p in payloads)
    assert sum(p.count('"t":"seen"') for p in payloads) == 100


def test_a_process_skips_its_own_payloads_and_reads_the_others() -> None:
    got: list[dict[str, Any]] = []
    a = PgChannel("", "node-a", got.append)
    msg = dumps({"t": "seen", "n": "node-b", "e": "dev-1"})
    a._dispatch(pack([dumps({"t": "seen", "n": "node-a", "e": "mine"})], prefix="node-a ")[0])
    a._dispatch(pack([msg], prefix="node-b ")[0])
    a._dispatch("[" + msg + "]")  # a sender of an older version: no prefix
    assert [m["e"] for m in got] == ["dev-1", "dev-1"] and a.received == 2


def test_a_message_too_large_for_one_payload_travels_in_fragments() -> None:
    got: list[dict[str, Any]] = []
    a, b = PgChannel("", "node-a", lambda m: None), PgChannel("", "node-b", got.append)
    a.publish({"t": "reg", "blob": "y" * 20_000})
    payloads = pack(a._out, prefix="node-a ")
    assert len(payloads) >= 3 and all(len(p.encode()) <= MAX_PAYLOAD for p in payloads)
    for p in payloads:
        b._dispatch(p)
    assert len(got) == 1 and got[0]["blob"] == "y" * 20_000 and got[0]["n"] == "node-a"
