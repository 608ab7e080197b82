"""The manifest's CDDL (firmware/zephyr_client/core/sota_manifest.cddl) as the one description:
packages written by ota.sota validate against it with zcbor's Python validation, what it refuses
ota refuses too, the committed C decoder is what zcbor generates from it, and
docs/sota-format.md shows it verbatim.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import cbor2
import pytest

from ota import keys
from ota.sota import SotaFormatError, build_package, parse_package
from tests.firmware.conftest import CORE
from tests.firmware.sota_tools import SELFTEST, SLOT, resign

ROOT = CORE.parents[2]
CDDL = CORE / "sota_manifest.cddl"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_manifest_decoder",
                                                  CORE / "gen_manifest_decoder.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def schema() -> Any:
    """zcbor's validator for the CDDL (with zcbor's prelude, as its code generator reads it)."""
    zcbor = _generator().load_zcbor()
    prelude = (Path(zcbor.__file__).parent / "zcbor" / "prelude.cddl").read_text()
    return zcbor.DataTranslator.from_cddl(CDDL.read_text() + "\n" + prelude, 3)


def _thaw(obj: Any) -> Any:
    """cbor2 >= 6 decodes a tag's content as frozendict and tuple; zcbor's validator (written
    for cbor2 5) wants dict and list."""
    if isinstance(obj, cbor2.CBORTag):
        return cbor2.CBORTag(obj.tag, _thaw(obj.value))
    if isinstance(obj, (list, tuple)):
        return [_thaw(x) for x in obj]
    if isinstance(obj, dict) or type(obj).__name__ == "frozendict":
        return {k: _thaw(v) for k, v in obj.items()}
    return obj


def valid(schema: Any, type_name: str, data: bytes) -> bool:
    """zcbor's verdict on ``data`` as the CDDL type ``type_name`` (raises when invalid)."""
    return bool(schema.my_types[type_name].validate_obj(_thaw(cbor2.loads(data))))


def _manifest_cbor(pkg: bytes) -> bytes:
    mlen = int.from_bytes(pkg[8:12], "little")
    return pkg[12:12 + mlen]


@pytest.mark.parametrize("kind", ["p256", "ed25519"])
@pytest.mark.parametrize("extras", [
    {}, {"selftest": SELFTEST}, {"selftest": {"input": [0] * 64, "expected": 4294967295}},
    {"exports": ["memory", "infer"], "section": ".m" + "x" * 62, "name": "n" * 64},
], ids=["plain", "selftest", "largest selftest", "longest texts"])
def test_packages_built_by_ota_match_the_cddl(schema: Any, retrained_model_wasm: bytes,
                                              kind: str, extras: dict[str, Any]) -> None:
    module = retrained_model_wasm
    if "exports" in extras:  # exports the module does have
        extras = {**extras, "exports": ["memory", "infer"]}
    pkg = build_package(module, name=extras.get("name", "classifier"), version="2.0.0",
                        private_key=keys.generate_private_key(kind), slot_size=SLOT,
                        **{k: v for k, v in extras.items() if k != "name"})
    cose = _manifest_cbor(pkg)
    assert valid(schema, "SOTA_COSE_Sign1", cose)
    assert valid(schema, "SOTA_Manifest", parse_package(pkg).manifest_bytes)
    assert valid(schema, "SOTA_Protected", parse_package(pkg).protected)


@pytest.mark.parametrize(("change", "what"), [
    ({10: 1}, "unknown key"),
    ({1: "n" * 65}, "name of 65 bytes"),
    ({2: "1.0.0" + "0" * 28}, "version of 33 bytes"),
    ({6: b"\0" * 31}, "sha256 of 31 bytes"),
    ({7: [f"e{i}" for i in range(17)]}, "17 exports"),
    ({7: ["x" * 65]}, "export name of 65 bytes"),
    ({8: {1: [], 2: 1}}, "empty self-test input"),
    ({8: {1: [1.0] * 65, 2: 1}}, "65 self-test inputs"),
    ({8: {1: [1.0], 2: 2 ** 32}}, "expected class of 33 bits"),
    ({5: 2 ** 32}, "payload_size of 33 bits"),
    ({4: "65536"}, "slot_size as text"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_the_cddl_and_ota_refuse_the_same_manifests(
    schema: Any, retrained_model_wasm: bytes, change: dict[int, Any], what: str,
) -> None:
    signer = keys.generate_private_key("p256")
    good = build_package(retrained_model_wasm, name="classifier", version="2.0.0",
                         private_key=signer, slot_size=SLOT)
    bad = resign(good, signer, manifest=change)
    with pytest.raises(Exception) as cddl_error:
        valid(schema, "SOTA_COSE_Sign1", _manifest_cbor(bad))
    assert type(cddl_error.value).__name__ == "CddlValidationError", cddl_error.value
    with pytest.raises(SotaFormatError):
        parse_package(bad)


def test_committed_decoder_is_what_zcbor_generates_from_the_cddl(tmp_path: Path) -> None:
    written = _generator().generate(tmp_path)
    assert [p.name for p in written] == ["sota_manifest_decode.c", "sota_manifest_decode.h",
                                         "sota_manifest_decode_types.h"]
    for path in written:
        committed = CORE / "generated" / path.name
        assert committed.read_text() == path.read_text(), (
            f"{committed.name} is stale: run `make -C firmware/zephyr_client/core generate`")


def test_docs_show_the_cddl_verbatim() -> None:
    doc = (ROOT / "docs" / "sota-format.md").read_text()
    blocks = re.findall(r"```cddl\n(.*?)```", doc, flags=re.DOTALL)
    assert blocks == [CDDL.read_text()]


def test_generated_decoder_carries_no_path_of_the_build_machine() -> None:
    for path in (CORE / "generated").iterdir():
        text = path.read_text()
        assert str(ROOT) not in text and "/home/" not in text and "site-packages" not in text
        assert hashlib.sha256(text.encode()).hexdigest()  # readable text, not a binary
