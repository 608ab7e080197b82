"""Settings: defaults, LWM2M_* environment, flags over environment, secret handling."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from lwm2m_server.config import Settings, redact_url


def test_defaults_match_the_design() -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.coap_host, s.coap_port, s.http_host, s.http_port) == ("::", 5683, "0.0.0.0", 8080)
    assert s.db_url == "sqlite:///./lwm2m.db" and s.objects_dirs == []
    assert s.request_timeout == 10.0 and s.queue_timeout == 24 * 3600


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
