"""First start in a data folder: key pair and default model once; a given key is never replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwm2m_server.config import Settings
from lwm2m_server.datadir import prepare_server_data


def test_first_start_creates_keys_and_default_model_once(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LWM2M_SOTA_PUBLIC_KEY", raising=False)
    folder = tmp_path / "data"
    created = prepare_server_data(Settings(data_dir=folder))
    assert [c.split(" ")[0] for c in created] == ["SOTA", "default", "model"]
    key = (folder / "keys" / "sota-signing.pem").read_bytes()
    settings = Settings(data_dir=folder)
    assert settings.sota_public_key == folder / "keys" / "sota-signing.pub.pem"
    assert prepare_server_data(settings) == []  # second start: nothing new, same key
    assert (folder / "keys" / "sota-signing.pem").read_bytes() == key


def test_a_server_given_a_public_key_makes_no_key_of_its_own(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from ota.keys import generate_private_key, public_key_pem

    given = tmp_path / "given.pub.pem"
    given.write_bytes(public_key_pem(generate_private_key("ed25519")))
    monkeypatch.setenv("LWM2M_SOTA_PUBLIC_KEY", str(given))
    folder = tmp_path / "data"
    created = prepare_server_data(Settings(data_dir=folder))
    assert not any("key" in c for c in created) and not (folder / "keys").exists()
    assert Settings(data_dir=folder).sota_public_key == given
