"""Both sides of SOTA: packages built by the Python `ota` package verify in the C core, and
tampered ones are refused by the C core with the same reason as ota.sota.verify_package.

The C side is the core's `sota_verify` host command, run both one-shot and through the
streaming writer (the path a device takes while the package arrives in blocks). The core
verifies ES256 (P-256) only, so the device keys here are P-256; Ed25519 packages and keys are
refused (docs/sota-format.md).
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import pytest

from ota import keys
from ota.sota import SotaError, build_package, parse_package, verify_package
from tests.firmware.conftest import CoreBuild
from tests.firmware.sota_tools import SELFTEST, SLOT, flip, resign, resign_map
from tests.support.wasm import wat_to_wasm


@dataclass(frozen=True)
class Keys:
    signer: Any
    pubkey_raw: Path
    pubkey_pem: Path
    other_raw: Path


@pytest.fixture(scope="module")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    d = tmp_path_factory.mktemp("keys")
    signer = keys.generate_private_key("p256")
    other = keys.generate_private_key("p256")
    (d / "pub.raw").write_bytes(keys.raw_public_key(signer))
    (d / "pub.pem").write_bytes(keys.public_key_pem(signer))
    (d / "other.raw").write_bytes(keys.raw_public_key(other))
    return Keys(signer, d / "pub.raw", d / "pub.pem", d / "other.raw")


def python_reason(pkg: bytes, pub: Any, **kw: Any) -> str:
    try:
        verify_package(pkg, pub, **kw)
    except SotaError as e:
        return e.reason
    return "ok"


def c_reason(core: CoreBuild, key: Path, pkg_file: Path, *args: str) -> tuple[str, str]:
    """Reason printed by sota_verify one-shot and streaming in 97-byte pieces; both must agree."""
    out = []
    for extra in ((), ("--stream", "97")):
        proc = subprocess.run([str(core.sota_verify), str(key), str(pkg_file), *args, *extra],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode in (0, 1), proc.stderr
        assert "runtime error" not in proc.stderr and "Sanitizer" not in proc.stderr, proc.stderr
        reason = proc.stdout.splitlines()[0]
        assert (proc.returncode == 0) == (reason == "ok")
        out.append(reason)
    assert out[0] == out[1], f"one-shot says {out[0]}, streaming says {out[1]}"
    return out[0], proc.stdout


# Each case: id, builder(good package, signer, module without infer) -> package, C args,
# verify_package keyword arguments, the reason both sides must give.
Builder = Callable[[bytes, Any, bytes], bytes]


def _name_offset(pkg: bytes) -> int:
    return pkg.index(b"classifier")


def _swap_first_keys(m: bytes) -> bytes:
    # {1: name, 2: version, ...} -> {2: version, 1: name, ...}: same entries, other order.
    d = cbor2.loads(m)
    return cbor2.dumps({2: d[2], 1: d[1], **{k: v for k, v in d.items() if k > 2}})


def _repeat_key(m: bytes) -> bytes:
    # One more entry, a second key 9 (cbor2 would keep only one in a dict).
    assert m[0] == 0xA9  # nine entries
    return bytes([0xAA]) + m[1:] + cbor2.dumps(9) + cbor2.dumps(1)


def _small_floats(m: bytes) -> bytes:
    # The self-test input written as float16 1.0, float32 0.5, float64 0.2 and integer 0.
    d = cbor2.loads(m)
    head = cbor2.dumps({k: v for k, v in d.items() if k < 8})
    entries = head[1:] + cbor2.dumps(8) + bytes.fromhex("a2" "01" "84" "f93c00" "fa3f000000") \
        + cbor2.dumps(0.2) + cbor2.dumps(0) + bytes.fromhex("0201") + cbor2.dumps(9) \
        + cbor2.dumps(d[9])
    return bytes([0xA9]) + entries


def _signature_offset(pkg: bytes) -> int:
    # The signature is the last item of the COSE structure, right before the payload.
    return len(pkg) - parse_package(pkg).manifest.payload_size - 5


CASES: list[tuple[str, Builder, list[str], dict[str, Any], str]] = [
    ("valid", lambda p, k, w: p, [], {}, "ok"),
    ("valid newer than installed", lambda p, k, w: p, ["--installed-version", "1.9.9"],
     {"installed_version": "1.9.9"}, "ok"),
    ("manifest byte flipped", lambda p, k, w: flip(p, _name_offset(p)), [], {}, "signature"),
    ("payload byte flipped", lambda p, k, w: flip(p, len(p) - 20), [], {}, "hash"),
    ("signature byte flipped", lambda p, k, w: flip(p, _signature_offset(p)), [], {},
     "signature"),
    ("downgrade", lambda p, k, w: p, ["--installed-version", "2.0.0"],
     {"installed_version": "2.0.0"}, "downgrade"),
    ("same version", lambda p, k, w: p, ["--installed-version", "2.0.0"],
     {"installed_version": "2.0.0"}, "downgrade"),
    ("payload larger than the receiver's slot", lambda p, k, w: p, ["--slot-size", "512"],
     {"slot_size": 512}, "oversize"),
    ("payload larger than the manifest's slot",
     lambda p, k, w: resign(p, k, manifest={4: 100}), [], {}, "oversize"),
    ("not a package: text", lambda p, k, w: b"hello, this is not a package at all", [], {},
     "format"),
    ("not a package: empty", lambda p, k, w: b"", [], {}, "format"),
    ("not a package: bare Wasm module", lambda p, k, w: parse_package(p).payload, [], {},
     "format"),
    ("format version 2", lambda p, k, w: flip(p, 4, 0x03), [], {}, "format"),
    ("truncated", lambda p, k, w: p[:-1], [], {}, "format"),
    ("trailing byte", lambda p, k, w: p + b"\0", [], {}, "format"),
    ("manifest length past the end", lambda p, k, w: p[:8] + struct.pack("<I", 16000) + p[12:],
     [], {}, "format"),
    ("unknown manifest key", lambda p, k, w: resign(p, k, manifest={10: 1}), [], {}, "format"),
    ("bad version text", lambda p, k, w: resign(p, k, manifest={2: "2.0"}), [], {}, "format"),
    ("unprotected header with another label",
     lambda p, k, w: resign(p, k, unprotected={5: b"x"}), [], {}, "format"),
    ("kid of another key", lambda p, k, w: resign(p, k, unprotected={4: b"\x01" * 8}), [], {},
     "signature"),
    ("no kid", lambda p, k, w: resign(p, k, unprotected={}), [], {}, "ok"),
    ("alg EdDSA over an ES256 signature", lambda p, k, w: resign(p, k, alg=-8), [], {},
     "signature"),
    ("unknown alg", lambda p, k, w: resign(p, k, alg=-99), [], {}, "signature"),
    ("manifest keys out of order", lambda p, k, w: resign_map(p, k, _swap_first_keys), [], {},
     "format"),
    ("repeated manifest key", lambda p, k, w: resign_map(p, k, _repeat_key), [], {}, "format"),
    ("name of 65 bytes", lambda p, k, w: resign(p, k, manifest={1: "n" * 65}), [], {}, "format"),
    ("name of 64 bytes", lambda p, k, w: resign(p, k, manifest={1: "n" * 64}), [], {}, "ok"),
    ("name with a NUL", lambda p, k, w: resign(p, k, manifest={1: "a\0b"}), [], {}, "format"),
    ("17 exports", lambda p, k, w: resign(p, k, manifest={7: [f"e{i}" for i in range(17)]}),
     [], {}, "format"),
    ("self-test number beyond float32",
     lambda p, k, w: resign(p, k, manifest={8: {1: [1e300], 2: 1}}), [], {}, "format"),
    ("self-test numbers as float16, float32 and int",
     lambda p, k, w: resign_map(p, k, _small_floats), [], {}, "ok"),
    ("alg beyond 64 bits", lambda p, k, w: resign(p, k, alg=-(2 ** 64)), [], {}, "format"),
    ("bad Wasm: garbage payload",
     lambda p, k, w: resign(p, k, payload=b"\0asm\x01\0\0\0\x01\xff" + b"x" * 20), [], {},
     "wasm"),
    ("bad Wasm: missing the infer export", lambda p, k, w: resign(p, k, payload=w), [], {},
     "wasm"),
    ("bad Wasm: payload is not Wasm", lambda p, k, w: resign(p, k, payload=b"ELF" * 100), [],
     {}, "wasm"),
]

# A module with memory and input_* exports but no infer.
NO_INFER_WAT = """
(module
  (memory (export "memory") 1)
  (func (export "input_buffer") (result i32) i32.const 16)
  (func (export "input_size") (result i32) i32.const 4))
"""


@pytest.fixture(scope="module")
def packages(example_model_wasm: bytes, retrained_model_wasm: bytes, key_files: Keys,
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("wat")
    return {
        "v2": build_package(retrained_model_wasm, name="classifier", version="2.0.0",
                            private_key=key_files.signer, slot_size=SLOT, selftest=SELFTEST),
        "no_infer": wat_to_wasm(NO_INFER_WAT, d, "no_infer"),
    }


@pytest.mark.parametrize(("builder", "c_args", "py_kwargs", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_c_core_gives_the_same_verdict_as_ota_for_built_and_tampered_packages(
    core_build: CoreBuild, key_files: Keys, packages: dict[str, bytes], tmp_path: Path,
    builder: Builder, c_args: list[str], py_kwargs: dict[str, Any], expected: str,
) -> None:
    pkg = builder(packages["v2"], key_files.signer, packages["no_infer"])
    pkg_file = tmp_path / "pkg.sota"
    pkg_file.write_bytes(pkg)
    pub = keys.public_key_of(key_files.signer)
    assert python_reason(pkg, pub, **py_kwargs) == expected
    c, out = c_reason(core_build, key_files.pubkey_raw, pkg_file, *c_args)
    assert c == expected, out


def test_c_core_refuses_a_package_signed_by_another_key(
    core_build: CoreBuild, key_files: Keys, packages: dict[str, bytes], tmp_path: Path,
) -> None:
    pkg_file = tmp_path / "pkg.sota"
    pkg_file.write_bytes(packages["v2"])
    other_pub = keys.load_public_key(keys.public_key_pem(keys.generate_private_key("p256")))
    assert python_reason(packages["v2"], other_pub) == "signature"
    assert c_reason(core_build, key_files.other_raw, pkg_file)[0] == "signature"


@pytest.mark.parametrize("key_format", ["raw", "hex", "pem"])
def test_es256_packages_verify_in_c_with_the_key_in_every_format(
    core_build: CoreBuild, key_files: Keys, packages: dict[str, bytes], tmp_path: Path,
    key_format: str,
) -> None:
    raw = keys.raw_public_key(key_files.signer)
    key_file = tmp_path / "p256.key"
    key_file.write_bytes({"raw": raw, "hex": raw.hex().encode() + b"\n",
                          "pem": keys.public_key_pem(key_files.signer)}[key_format])
    (tmp_path / "p.sota").write_bytes(packages["v2"])
    assert c_reason(core_build, key_file, tmp_path / "p.sota")[0] == "ok"


def test_ed25519_packages_are_refused_by_the_es256_only_core_like_by_ota(
    core_build: CoreBuild, key_files: Keys, retrained_model_wasm: bytes, tmp_path: Path,
) -> None:
    ed = keys.generate_private_key("ed25519")
    pkg = build_package(retrained_model_wasm, name="classifier", version="2.0.0",
                        private_key=ed, slot_size=SLOT, selftest=SELFTEST)
    (tmp_path / "p.sota").write_bytes(pkg)
    # The device's trusted key is P-256: the Ed25519 package fails at the signature step.
    assert python_reason(pkg, keys.public_key_of(key_files.signer)) == "signature"
    assert c_reason(core_build, key_files.pubkey_raw, tmp_path / "p.sota")[0] == "signature"
    # An Ed25519 key cannot be the device's key at all: a usage error that says why.
    for name, data in (("ed.raw", keys.raw_public_key(ed)), ("ed.pem", keys.public_key_pem(ed))):
        (tmp_path / name).write_bytes(data)
        proc = subprocess.run([str(core_build.sota_verify), str(tmp_path / name),
                               str(tmp_path / "p.sota")], capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode == 2, proc.stdout
        assert "Ed25519" in proc.stderr and "ES256" in proc.stderr, proc.stderr


def test_c_core_reads_the_manifest_ota_wrote_and_a_pem_public_key(
    core_build: CoreBuild, key_files: Keys, packages: dict[str, bytes], tmp_path: Path,
    retrained_model_wasm: bytes,
) -> None:
    pkg_file = tmp_path / "pkg.sota"
    pkg_file.write_bytes(packages["v2"])
    reason, out = c_reason(core_build, key_files.pubkey_pem, pkg_file)
    assert reason == "ok"
    sha = hashlib.sha256(retrained_model_wasm).hexdigest()
    assert (f"name=classifier version=2.0.0 section=.wasm_model slot_size={SLOT} "
            f"payload_size={len(retrained_model_wasm)} sha256={sha}") in out


def test_import_allowlist_is_applied_alike_in_c_and_python(
    core_build: CoreBuild, key_files: Keys, tmp_path: Path,
) -> None:
    wat = """
    (module
      (import "env" "log" (func $log (param i32)))
      (memory (export "memory") 1)
      (func (export "input_buffer") (result i32) i32.const 16)
      (func (export "input_size") (result i32) i32.const 4)
      (func (export "infer") (result i32) i32.const 0 call $log i32.const 1))
    """
    module = wat_to_wasm(wat, tmp_path, "imports")
    pkg = build_package(module, name="m", version="1.0.0", private_key=key_files.signer,
                        slot_size=SLOT, allowed_imports={"env.log"})
    pkg_file = tmp_path / "pkg.sota"
    pkg_file.write_bytes(pkg)
    pub = keys.public_key_of(key_files.signer)
    assert python_reason(pkg, pub) == "wasm"
    assert c_reason(core_build, key_files.pubkey_raw, pkg_file)[0] == "wasm"
    assert python_reason(pkg, pub, allowed_imports={"env.log"}) == "ok"
    assert c_reason(core_build, key_files.pubkey_raw, pkg_file, "--allow-import", "env.log")[0] == "ok"
    assert c_reason(core_build, key_files.pubkey_raw, pkg_file, "--allow-import", "env.*")[0] == "ok"


def test_sota_verify_refuses_unusable_arguments_with_a_message(
    core_build: CoreBuild, key_files: Keys, tmp_path: Path,
) -> None:
    bad_key = tmp_path / "bad.key"
    bad_key.write_text("not a key")
    pkg = tmp_path / "p.sota"
    pkg.write_bytes(b"SOTA")
    for args in ([str(bad_key), str(pkg)], [str(key_files.pubkey_raw)],
                 [str(key_files.pubkey_raw), str(pkg), "--installed-version", "x"],
                 [str(key_files.pubkey_raw), str(tmp_path / "missing.sota")]):
        proc = subprocess.run([str(core_build.sota_verify), *args], capture_output=True,
                              text=True, timeout=30)
        assert proc.returncode == 2, (args, proc.stdout)
        assert proc.stderr.startswith("sota_verify:"), proc.stderr
