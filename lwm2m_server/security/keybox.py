"""Device keys encrypted at rest: AES-256-GCM under a key derived from the server secret.

The server secret (``LWM2M_SECRET_KEY``) never touches the database. Each stored key is
``version || nonce || ciphertext+tag``; the associated data binds a ciphertext to its row
(endpoint, purpose, identity), so a ciphertext copied to another row does not decrypt.
"""

from __future__ import annotations

import logging
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["DEVELOPMENT_SECRET", "KeyBox", "SecretError", "keybox_from_settings"]

log = logging.getLogger(__name__)

_VERSION = b"\x01"
# Used only with LWM2M_ENVIRONMENT=development and no LWM2M_SECRET_KEY (the quick tour).
DEVELOPMENT_SECRET = "lwm2m-server development secret: never use it for real devices"


class SecretError(RuntimeError):
    """The server secret is missing, or a stored key does not decrypt with it."""


class KeyBox:
    """Encrypts and decrypts device keys with one server secret."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise SecretError("the server secret is empty")
        self._aead = AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=b"lwm2m-server",
                                 info=b"device credentials v1").derive(secret.encode("utf-8")))

    def seal(self, key: bytes, *context: str) -> bytes:
        """``key`` encrypted, bound to ``context`` (e.g. endpoint, purpose, identity)."""
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, key, _aad(context))

    def open(self, sealed: bytes, *context: str) -> bytes:
        """The key ``seal`` encrypted; SecretError when the secret or the context differ."""
        if len(sealed) < 1 + 12 + 16 or sealed[:1] != _VERSION:
            raise SecretError("stored key is not in a known format")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], _aad(context))
        except InvalidTag:
            raise SecretError("stored key does not decrypt: LWM2M_SECRET_KEY differs from the one "
                              "it was stored with, or the row was altered") from None


def _aad(context: tuple[str, ...]) -> bytes:
    return "\x00".join(context).encode("utf-8")


def keybox_from_settings(settings: object) -> KeyBox:
    """The KeyBox of ``settings.secret_key``; SecretError when it is missing outside development.

    Weak secrets are already refused by the settings' validation; a missing one is refused here,
    where a key must be stored or read, so a server without device credentials needs no secret.
    """
    secret = getattr(settings, "secret_key", None)
    if secret is not None:
        return KeyBox(secret.get_secret_value())
    if getattr(settings, "environment", "production") == "development":
        log.warning("LWM2M_SECRET_KEY is not set: device keys are encrypted with the built-in "
                    "development secret (set it before provisioning real devices)")
        return KeyBox(DEVELOPMENT_SECRET)
    raise SecretError("LWM2M_SECRET_KEY is not set: it encrypts device keys at rest (at least 32 "
                      "random characters, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
