"""A bounded fuzz run against the CoAP endpoint over UDP (the long run: bench/fuzz_coap.py
--minutes N): random and mutated Register/Update/De-register/Send and Block1 abuse leave no
traceback, no unhandled task error, and a server that still registers devices."""

from __future__ import annotations

import asyncio
import logging
import os

from aiocoap import Code

from tests.fuzz.harness import CoapFuzzer
from tests.protocol.conftest import running
from tests.support.raw_coap import RawPeer, request

SECONDS = float(os.environ.get("LWM2M_FUZZ_SECONDS", "6"))


async def test_fuzzed_datagrams_get_answers_and_no_traceback(sqlite_url, caplog) -> None:
    caplog.set_level(logging.INFO)
    loop = asyncio.get_running_loop()
    unhandled: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    async with running(sqlite_url, max_payload=8 * 1024) as srv:
        fuzzer = CoapFuzzer(srv.coap_port, seed=7, endpoints=50)
        try:
            stats = await fuzzer.run(seconds=SECONDS, rate=1500)
        finally:
            fuzzer.close()
        peer = await RawPeer.open()
        try:
            answer = await peer.ask(request(query=["ep=after-fuzz", "lt=60"], payload=b"</3/0>"),
                                    srv.coap_port)
        finally:
            peer.close()
        assert answer is not None and answer.code == Code.CREATED
    loop.set_exception_handler(None)
    print(stats.summary())
    assert stats.sent > 1000
    answers = stats.answers
    # Every kind of refusal was exercised and answered with its code.
    for code in ("2.01", "2.31", "4.00", "4.02", "4.04", "4.08", "4.13"):
        assert answers[code] > 0, stats.summary()
    assert answers["5.00"] == 0, stats.summary()
    tracebacks = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert tracebacks == [], [r.getMessage() for r in tracebacks[:5]]
    assert unhandled == [], unhandled[:3]
