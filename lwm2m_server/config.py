"""Server settings: one pydantic-settings class read from ``LWM2M_*`` environment variables and CLI flags.

Flags win over environment variables, which win over the defaults. ``Settings.from_args``
builds the settings for ``lwm2m-server run`` from its parsed flags.
"""

from __future__ import annotations

import os
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "SettingsError", "redact_url", "default_data_dir", "DATA_DIR_ENV", "SOTA_PUBLIC_KEY_FILE",
           "SOTA_SIGNING_KEY_FILE", "DEFAULT_MODEL_FILE"]

DATA_DIR_ENV = "LWM2M_DATA_DIR"
# Inside the data folder (docs/models.md, "The data folder").
SOTA_SIGNING_KEY_FILE = "keys/sota-signing.pem"
SOTA_PUBLIC_KEY_FILE = "keys/sota-signing.pub.pem"
DEFAULT_MODEL_FILE = "models/default.wasm"

# Values an operator might copy from an example; refused for secrets outside development.
_PLACEHOLDER_SECRETS = {"changethis", "changeme", "secret", "admin", "password", "token"}


def default_data_dir() -> FsPath:
    """The per-user data folder: ``$XDG_DATA_HOME/lwm2m-server`` or ``~/.local/share/lwm2m-server``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return FsPath(base) / "lwm2m-server"


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs and error messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class SettingsError(RuntimeError):
    """The settings ask for something this installation cannot do (said with how to fix it)."""


class Settings(BaseSettings):
    """Everything ``lwm2m-server run`` needs to know; env prefix ``LWM2M_``."""

    model_config = SettingsConfigDict(env_prefix="LWM2M_", extra="ignore", frozen=True)

    # "::" binds IPv6 and (on dual-stack hosts) IPv4 as well.
    coap_host: str = "::"
    coap_port: int = Field(5683, ge=0, le=65535)
    # CoAP over DTLS 1.2 (coaps) on the same host. Unset: 5684, or any free port when coap_port
    # is 0 (tests); LWM2M_COAPS=false switches the DTLS listener off.
    coaps_port: int | None = Field(None, ge=0, le=65535)
    coaps: bool = True
    # An extra coaps port that serves only the bootstrap interface (/bs), for clients that keep
    # one DTLS session per server address (docs/security.md); None: none (0: any free port).
    coaps_bootstrap_port: int | None = Field(None, ge=0, le=65535)
    # "optional": plain CoAP stays open for endpoints without credentials; "required": DTLS only.
    security: Literal["optional", "required"] = "optional"
    # Encrypts the device keys at rest (docs/security.md); at least 32 random characters.
    secret_key: SecretStr | None = None
    # Most DTLS sessions kept at once; past it the least recently active one is dropped.
    max_dtls_sessions: int = Field(20000, ge=1)
    http_host: str = "0.0.0.0"
    # Processes `run` starts, sharing the ports (SO_REUSEPORT) and the database; more than one
    # needs PostgreSQL (docs/scale.md).
    workers: int = Field(1, ge=1, le=256, description="server processes sharing the ports; more "
                         "than 1 needs PostgreSQL")
    http_port: int = Field(8080, ge=0, le=65535)
    # One folder holds the database, the artifacts and the SOTA keys of a server, so every
    # command finds them whichever directory it runs from (LWM2M_DATA_DIR, --data-dir).
    data_dir: FsPath = Field(default_factory=default_data_dir)
    # Default sqlite:///<data_dir>/lwm2m.db; may carry a password: see db_url_redacted.
    db_url: str = Field("", repr=False)
    # Extra DDF folders; LWM2M_OBJECTS_DIRS takes them separated by the OS path separator or commas.
    objects_dirs: Annotated[list[FsPath], NoDecode] = Field(default_factory=list)
    artifacts_dir: FsPath = FsPath("")  # default <data_dir>/artifacts
    # PEM public key that SOTA uploads must verify against; default: the data folder's key.
    sota_public_key: FsPath | None = None
    # PEM private key `model build --sota` signs with when no --key is given (data folder's).
    sota_signing_key: FsPath | None = None
    request_timeout: float = Field(10.0, gt=0, description="seconds to wait for a device's answer")
    queue_timeout: float = Field(24 * 3600.0, gt=0,
                                 description="seconds a request to a sleeping device may wait")
    max_payload: int = Field(64 * 1024, ge=1024, description="largest registration payload (bytes)")
    max_datagram: int = Field(16 * 1024, ge=1152, le=65535, description="largest CoAP datagram "
                              "read whole (bytes); a longer one is answered 4.13 (use Block1)")
    max_json_body: int = Field(1024 * 1024, ge=1024, description="largest REST request body "
                               "(bytes) except artifact uploads; more is a 413")
    read_on_register: bool = Field(True, description="read /3/0 (and /33100/0) in the background "
                                   "after each Register, for the firmware and model columns")
    # Retention (store/retention.py; docs/reliability.md): seconds to keep, 0 keeps for ever.
    retention_registrations: float = Field(30 * 86400.0, ge=0, description="seconds an expired "
                                           "registration (with its latest values) is kept")
    retention_events: float = Field(30 * 86400.0, ge=0, description="seconds events are kept")
    retention_requests: float = Field(7 * 86400.0, ge=0, description="seconds a finished queued "
                                      "request is kept")
    retention_interval: float = Field(600.0, gt=0, description="seconds between purges")
    retention_batch: int = Field(1000, ge=1, le=100_000, description="rows deleted per transaction")
    webhook_allow_private: bool = Field(False, description="allow webhook URLs that are or resolve "
                                        "to loopback, private, link-local or unspecified addresses")
    public_base_url: str | None = Field(None, description="base URL devices use to fetch /fw links")
    environment: Literal["development", "production"] = "production"
    # Optional bootstrap token with every scope (for the first API calls before `token create`).
    admin_token: SecretStr | None = None
    log_level: str = "info"
    log_format: Literal["text", "json"] = Field("text", description="json: one JSON object a "
                                                "line, for log shippers")
    access_log: bool = Field(False, description="one info line per HTTP request")

    @field_validator("objects_dirs", mode="before")
    @classmethod
    def _split_dirs(cls, v: Any) -> Any:
        if isinstance(v, str):
            parts = [p for chunk in v.split(os.pathsep) for p in chunk.split(",")]
            return [p.strip() for p in parts if p.strip()]
        return v

    @model_validator(mode="after")
    def _defaults_from_data_dir(self) -> Settings:
        # Frozen model: fill the folder-relative defaults once, here.
        data_dir = FsPath(os.path.expanduser(self.data_dir)).absolute()
        object.__setattr__(self, "data_dir", data_dir)
        if not self.db_url:
            object.__setattr__(self, "db_url", f"sqlite:///{data_dir / 'lwm2m.db'}")
        if self.artifacts_dir == FsPath(""):
            object.__setattr__(self, "artifacts_dir", data_dir / "artifacts")
        for field, name in (("sota_public_key", SOTA_PUBLIC_KEY_FILE),
                            ("sota_signing_key", SOTA_SIGNING_KEY_FILE)):
            if getattr(self, field) is None and (data_dir / name).is_file():
                object.__setattr__(self, field, data_dir / name)
        return self

    @property
    def default_model(self) -> FsPath:
        """Where the data folder keeps the model new simulated devices start with."""
        return self.data_dir / DEFAULT_MODEL_FILE

    def describe(self) -> str:
        """One line saying which data folder and database a command uses."""
        return f"data folder {self.data_dir} (database {self.db_url_redacted})"

    @field_validator("public_base_url")
    @classmethod
    def _check_base_url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https", "coap", "coaps") or not parts.netloc:
            raise ValueError(f"public_base_url must be an absolute http(s) or coap(s) URL, got {v!r}")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> Settings:
        if self.admin_token is not None and self.environment != "development":
            value = self.admin_token.get_secret_value()
            if value.lower() in _PLACEHOLDER_SECRETS or len(value) < 32:
                raise ValueError("admin_token must be at least 32 random characters outside "
                                 "development (set LWM2M_ENVIRONMENT=development to allow it)")
        if self.secret_key is not None and self.environment != "development":
            value = self.secret_key.get_secret_value()
            if value.lower() in _PLACEHOLDER_SECRETS or len(value) < 32 or len(set(value)) < 8:
                raise ValueError("secret_key must be at least 32 random characters outside "
                                 "development (set LWM2M_ENVIRONMENT=development to allow it)")
        return self

    @property
    def coaps_bind_port(self) -> int | None:
        """The UDP port to bind for coaps (0: any free one), None when DTLS is off."""
        if not self.coaps:
            return None
        if self.coaps_port is not None:
            return self.coaps_port
        return 0 if self.coap_port == 0 else 5684

    @property
    def shares_ports(self) -> bool:
        """True on PostgreSQL: every process there is a cluster node and binds its (non-zero)
        CoAP, CoAPS and HTTP ports with SO_REUSEPORT, so several share them on one host."""
        return self.db_url.startswith("postgresql")

    @property
    def db_url_redacted(self) -> str:
        return redact_url(self.db_url)

    @classmethod
    def from_args(cls, **flags: Any) -> Settings:
        """Settings from the environment, overridden by the flags that were given (not None)."""
        given = {k: v for k, v in flags.items() if v is not None and v != []}
        return cls(**given)
