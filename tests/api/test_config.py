"""Settings: defaults, LWM2M_* environment, flags over environment, secret handling."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from lwm2m_server.config import Settings, redact_url


def test_defaults_match_the_design(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LWM2M_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.coap_host, s.coap_port, s.http_host, s.http_port) == ("::", 5683, "0.0.0.0", 8080)
    assert s.data_dir == tmp_path / "lwm2m-server"
    assert s.db_url == f"sqlite:///{tmp_path / 'lwm2m-server' / 'lwm2m.db'}" and s.objects_dirs == []
    assert s.artifacts_dir == tmp_path / "lwm2m-server" / "artifacts"
    assert s.sota_public_key is None and s.sota_signing_key is None
    assert s.request_timeout == 10.0 and s.queue_timeout == 24 * 3600


def test_without_xdg_the_data_folder_is_under_the_home_folder(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    monkeypatch.delenv("LWM2M_DATA_DIR", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings().data_dir == tmp_path / ".local" / "share" / "lwm2m-server"


def test_data_dir_flag_beats_the_environment_and_db_flag_beats_both(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LWM2M_DATA_DIR", str(tmp_path / "env"))
    assert Settings().data_dir == tmp_path / "env"
    s = Settings.from_args(data_dir=tmp_path / "flag", db_url="sqlite:///other.db")
    assert s.data_dir == tmp_path / "flag" and s.db_url == "sqlite:///other.db"
    assert s.artifacts_dir == tmp_path / "flag" / "artifacts"


def test_keys_in_the_data_folder_become_the_sota_keys_unless_one_is_given(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LWM2M_SOTA_PUBLIC_KEY", raising=False)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "sota-signing.pub.pem").write_text("x")
    (tmp_path / "keys" / "sota-signing.pem").write_text("x")
    s = Settings(data_dir=tmp_path)
    assert s.sota_public_key == tmp_path / "keys" / "sota-signing.pub.pem"
    assert s.sota_signing_key == tmp_path / "keys" / "sota-signing.pem"
    monkeypatch.setenv("LWM2M_SOTA_PUBLIC_KEY", str(tmp_path / "given.pem"))
    assert Settings(data_dir=tmp_path).sota_public_key == tmp_path / "given.pem"


def test_environment_is_read_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LWM2M_COAP_PORT", "5999")
    monkeypatch.setenv("LWM2M_HTTP_PORT", "9000")
    monkeypatch.setenv("LWM2M_OBJECTS_DIRS", "a,b")
    s = Settings.from_args(http_port=9100, db_url=None, objects_dirs=[])
    assert s.coap_port == 5999 and s.http_port == 9100
    assert s.objects_dirs == [Path("a"), Path("b")]


def test_bad_values_are_refused_with_the_field_name() -> None:
    with pytest.raises(ValidationError, match="coap_port"):
        Settings(coap_port=70000)
    with pytest.raises(ValidationError, match="public_base_url"):
        Settings(public_base_url="ftp://x")


def test_weak_admin_token_is_refused_outside_development() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(admin_token="changethis")
    assert Settings(admin_token="changethis", environment="development").admin_token is not None


def test_database_password_never_shows_in_repr() -> None:
    s = Settings(db_url="postgresql+psycopg://u:hunter2@db/x")
    assert "hunter2" not in repr(s) and "hunter2" not in s.db_url_redacted
    assert redact_url("sqlite:///./x.db") == "sqlite:///./x.db"
