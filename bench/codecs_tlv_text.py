"""What the TLV, text and link-format codecs cost: time per payload and bytes per payload.

Decodes and encodes the LwM2M 1.1 spec's Device instance (/3/0) in TLV, a single resource in
text/plain, and a registration payload in link-format. The baseline, measured in the same run,
is the standard library's JSON round trip of the same values (``{path: value}``): the ratios say
how many times slower (or larger) each codec is than json.dumps/json.loads of the flat values.

Run from the repository root:  python bench/codecs_tlv_text.py
"""

from __future__ import annotations

import json
import sys
import timeit
from pathlib import Path as FsPath

ROOT = FsPath(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lwm2m_server.codecs.link_format import parse_registration  # noqa: E402
from lwm2m_server.codecs.text import CODEC as TEXT  # noqa: E402
from lwm2m_server.codecs.tlv import CODEC as TLV  # noqa: E402
from lwm2m_server.codecs.tlv import read_tlv  # noqa: E402
from lwm2m_server.model import Path, default_registry, flatten  # noqa: E402

DEVICE_TLV = bytes.fromhex(
    "C800144F70656E204D6F62696C6520416C6C69616E6365C801164C69676874776569676874204D324D20436C69656E74"
    "C80209333435303030313233C303312E30860641000141010588070842000ED842011388870841007D42010384"
    "C10964C10A0F830B410000C40D5182428FC60E2B30323A3030C11055")
REGISTRATION = b'</>;rt="oma.lwm2m";ct=110,</1/0>,</3>;ver=1.1,</3/0>,</5/0>,</9/0>,</9/1>,</33100/0>'


def per_call(fn, number: int = 2000) -> float:
    """Best of 5 runs, microseconds per call."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    reg = default_registry()
    inst_path = Path.parse("/3/0")
    node = TLV.decode(DEVICE_TLV, inst_path, reg)
    flat = {str(p): v for p, v in flatten(node, inst_path).items()}
    flat_json = json.dumps(flat)

    base_dec = per_call(lambda: json.loads(flat_json))
    base_enc = per_call(lambda: json.dumps(flat))
    rows = [
        ("json.loads of the flat values (baseline)", base_dec, base_dec),
        ("TLV records only (read_tlv)", per_call(lambda: read_tlv(DEVICE_TLV)), base_dec),
        ("TLV decode /3/0 to nodes", per_call(lambda: TLV.decode(DEVICE_TLV, inst_path, reg)), base_dec),
        ("json.dumps of the flat values (baseline)", base_enc, base_enc),
        ("TLV encode /3/0", per_call(lambda: TLV.encode(node, inst_path, reg)), base_enc),
    ]
    res_path = Path.parse("/3/0/9")
    res = node.resources[9]
    rows += [
        ("text decode /3/0/9", per_call(lambda: TEXT.decode(b"100", res_path, reg)), base_dec),
        ("text encode /3/0/9", per_call(lambda: TEXT.encode(res, res_path, reg)), base_enc),
        ("link-format registration parse", per_call(lambda: parse_registration(REGISTRATION)), base_dec),
    ]
    print(f"{'operation':44} {'us/call':>9} {'x baseline':>11}")
    for name, us, base in rows:
        print(f"{name:44} {us:9.2f} {us / base:11.2f}")
    print()
    print(f"Device /3/0: TLV {len(DEVICE_TLV)} bytes, flat JSON {len(flat_json)} bytes, "
          f"ratio {len(DEVICE_TLV) / len(flat_json):.2f}")


if __name__ == "__main__":
    main()
