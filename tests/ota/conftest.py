"""Fixtures of the OTA tests: signing keys and firmware ELFs built in the test run."""

from __future__ import annotations

from pathlib import Path

import pytest

from ota import keys
from tests.ota.elfbuild import build_firmware_elf


@pytest.fixture(scope="session", params=["ed25519", "p256"])
def key_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def private_keys() -> dict[str, keys.PrivateKey]:
    return {kind: keys.generate_private_key(kind) for kind in keys.KEY_KINDS}


@pytest.fixture(scope="session")
def signing_key(private_keys: dict[str, keys.PrivateKey], key_kind: str) -> keys.PrivateKey:
    return private_keys[key_kind]


@pytest.fixture(scope="session")
def ed_key(private_keys: dict[str, keys.PrivateKey]) -> keys.PrivateKey:
    return private_keys["ed25519"]


@pytest.fixture(scope="session")
def ed_pub(ed_key: keys.PrivateKey) -> keys.PublicKey:
    return keys.public_key_of(ed_key)


@pytest.fixture(scope="session")
def firmware_elfs(tmp_path_factory: pytest.TempPathFactory,
                  example_model_wasm: bytes) -> dict[str, bytes]:
    """x86-64 (gcc) and 32-bit ARM (arm-none-eabi-gcc) ELFs with the example model installed."""
    out: Path = tmp_path_factory.mktemp("elf")
    return {arch: build_firmware_elf(out / arch, example_model_wasm, arch=arch)
            for arch in ("x86_64", "arm")}
