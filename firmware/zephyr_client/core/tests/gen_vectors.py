"""Build the packages the core's C unit tests read, with the Python `ota` package itself.

Usage: python3 gen_vectors.py OUT_DIR

Writes the example model and its retrained variant (clang, as the test suite builds them),
the P-256 key pair the device trusts (key.raw: 65-byte uncompressed point), a second P-256
public key, SOTA packages made by ota.sota.build_package (ES256, as the device accepts them),
one signed with Ed25519 (which the device refuses), and an ES256 signature over a fixed
message for the crypto wrapper's own test, so the C tests exercise exactly the bytes the
server sends.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))

from ota import keys  # noqa: E402
from ota.sota import build_package  # noqa: E402
from tests.support.wasm import build_example_model  # noqa: E402

SLOT_SIZE = 65536
SELFTEST = {"input": [1.0, 0.5, 0.2, 0.1], "expected": 1}
MESSAGE = b"sota core: ES256 through PSA Crypto"


def main(out: Path) -> None:
    """Write every vector into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    v1 = build_example_model(out)
    v2 = build_example_model(out, bias_shift=0.25)
    key = keys.generate_private_key("p256")
    other = keys.generate_private_key("p256")
    ed25519 = keys.generate_private_key("ed25519")
    (out / "key.raw").write_bytes(keys.raw_public_key(key))
    (out / "other.raw").write_bytes(keys.raw_public_key(other))
    (out / "v1.wasm").write_bytes(v1)
    (out / "v2.wasm").write_bytes(v2)
    (out / "es256.msg").write_bytes(MESSAGE)
    (out / "es256.sha256").write_bytes(hashlib.sha256(MESSAGE).digest())
    (out / "es256.sig").write_bytes(keys.sign_raw(key, MESSAGE))
    builds = (("v1.sota", v1, "1.0.0", key), ("v2.sota", v2, "2.0.0", key),
              ("v3.sota", v1, "3.0.0", key), ("ed25519.sota", v2, "2.0.0", ed25519))
    for name, module, version, signer in builds:
        pkg = build_package(module, name="classifier", version=version, private_key=signer,
                            slot_size=SLOT_SIZE, selftest=SELFTEST, created=1700000000)
        (out / name).write_bytes(pkg)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: gen_vectors.py OUT_DIR")
    main(Path(sys.argv[1]))
