"""Codec throughput for a full Device object instance (/3/0): TLV, SenML JSON, SenML CBOR, LwM2M CBOR.

Every readable resource of objects/3.xml is filled. For each format the script prints decode and
encode rates (operations per second, best of several runs) and, beside them, the rate of the plain
parser/serialiser on the same bytes measured in this run (json.loads / json.dumps for SenML JSON,
cbor2.loads / cbor2.dumps for the CBOR formats and, as the nearest generic binary baseline, for
TLV), with the ratio ours/baseline. A ratio of 0.25 means our codec (parse + validate + type +
build the node tree) runs at a quarter of the bare parser's speed.

Run: python bench/codecs_bench.py [--seconds 0.3]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import cbor2

from lwm2m_server.codecs import CodecError, ContentFormat, codec_for
from lwm2m_server.model import (
    MultipleResource,
    ObjectInstance,
    ObjLnk,
    Path,
    Resource,
    SingleResource,
    Value,
    default_registry,
)


def device_instance() -> ObjectInstance:
    """Device /3/0 with every readable resource of the definition filled."""
    reg = default_registry()
    obj = reg.get(3)
    assert obj is not None
    sample: dict[str, Value] = {
        "string": "Open Mobile Alliance", "integer": 3800, "time": 1367491215, "objlnk": ObjLnk(4, 0),
        "unsigned integer": 42, "float": 3.5, "boolean": True, "opaque": b"\x01\x02", "corelnk": "</3>",
    }
    resources: list[Resource] = []
    for r in obj.resources.values():
        if not r.readable:
            continue
        value = sample[r.type.value]
        if r.multiple:
            resources.append(MultipleResource(r.id, {0: value, 1: value}, r.type))
        else:
            resources.append(SingleResource(r.id, value, r.type))
    return ObjectInstance.of(0, *resources)


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Operations per second: the best of three runs of about ``seconds`` each."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= seconds / 10:
            break
        n *= 2
    n = max(1, int(n * seconds / 10 / dt * 10))
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.3, help="time per measurement run")
    args = ap.parse_args()

    reg = default_registry()
    path = Path.of(3, 0)
    node = device_instance()
    formats = [("TLV", ContentFormat.TLV), ("SenML JSON", ContentFormat.SENML_JSON),
               ("SenML CBOR", ContentFormat.SENML_CBOR), ("LwM2M CBOR", ContentFormat.LWM2M_CBOR)]

    print(f"Device object /3/0: {len(node.resources)} readable resources, "
          f"{sum(len(r.instances) if isinstance(r, MultipleResource) else 1 for r in node.resources.values())}"
          f" values\n")
    header = (f"{'format':<11} {'bytes':>5}  {'op':<6} {'ours ops/s':>11}  "
              f"{'baseline':<13} {'base ops/s':>11}  {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for name, fmt in formats:
        try:
            codec = codec_for(fmt)
        except (CodecError, ImportError) as e:
            print(f"{name:<11} not available: {e}")
            continue
        data = codec.encode(node, path, reg)
        assert codec.decode(data, path, reg) == node, f"{name} does not round-trip"
        loads: Callable[[bytes], Any]
        dumps: Callable[[Any], Any]
        if fmt is ContentFormat.SENML_JSON:
            base_name, loads, dumps = "json", json.loads, lambda o: json.dumps(o, separators=(",", ":"))
        else:
            base_name, loads, dumps = "cbor2", cbor2.loads, cbor2.dumps
        # TLV has no generic parser: compare it with cbor2 on the SenML CBOR bytes of the same node.
        base_bytes = codec_for(ContentFormat.SENML_CBOR).encode(node, path, reg) if fmt is ContentFormat.TLV else data
        parsed = loads(base_bytes)
        rows = [
            ("decode", rate(lambda: codec.decode(data, path, reg), args.seconds),
             f"{base_name}.loads", rate(lambda: loads(base_bytes), args.seconds)),
            ("encode", rate(lambda: codec.encode(node, path, reg), args.seconds),
             f"{base_name}.dumps", rate(lambda: dumps(parsed), args.seconds)),
        ]
        for op, ours, bname, base in rows:
            print(f"{name:<11} {len(data):>5}  {op:<6} {ours:>11,.0f}  {bname:<13} {base:>11,.0f}  {ours / base:>6.3f}")
    print("\nratio = ours / baseline on the same bytes (TLV: against cbor2 on the SenML CBOR bytes)")


if __name__ == "__main__":
    main()
