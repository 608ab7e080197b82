"""Who may speak for an endpoint: the identity a request came with, checked against the endpoint.

The CoAP adapter describes each request's channel as an :class:`Authentication` (plain CoAP, or
DTLS with the PSK identity the handshake proved and the endpoint that identity belongs to);
:class:`SecurityPolicy` decides whether that channel may Register, Update, De-register or Send
for an endpoint, and raises ``RegistrationError`` (4.03, with the reason) when not. Pure logic:
the credential lookup is handed in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .errors import RegistrationError

__all__ = ["PLAIN", "SECURITY_MODES", "Authentication", "SecurityPolicy"]

SECURITY_MODES = ("none", "psk")


@dataclass(frozen=True, slots=True)
class Authentication:
    """The channel of one request: ``mode`` "none" (plain CoAP) or "psk" (DTLS-PSK)."""

    mode: str = "none"
    identity: str | None = None   # the PSK identity the DTLS handshake proved
    endpoint: str | None = None   # the endpoint that identity belongs to
    purpose: str | None = None    # "dm" or "bootstrap"

    @property
    def secure(self) -> bool:
        return self.mode != "none"

    def describe(self) -> str:
        return "plain CoAP" if not self.secure else f"DTLS ({self.mode}, identity {self.identity!r})"


PLAIN = Authentication()


class SecurityPolicy:
    """The rules of docs/security.md, for the registration interface and Send.

    ``required``: plain CoAP registrations are refused altogether. ``has_credentials(endpoint)``
    (awaitable): whether the endpoint has DM credentials (then it is never served over plain
    CoAP); it is asked only for plain-CoAP requests.
    """

    def __init__(self, required: bool = False,
                 has_credentials: Callable[[str], Awaitable[bool]] | None = None) -> None:
        self.required = required
        self._has_credentials = has_credentials or _no_credentials

    async def check_register(self, endpoint: str, auth: Authentication) -> None:
        """May ``auth`` register as ``endpoint``? RegistrationError 4.03 with the reason if not."""
        if not auth.secure:
            if self.required:
                raise RegistrationError("this server accepts registrations over DTLS only: use coaps",
                                        "4.03")
            if await self._has_credentials(endpoint):
                raise RegistrationError(f"endpoint {endpoint!r} has credentials: register over DTLS "
                                        "(coaps)", "4.03")
            return
        if auth.purpose != "dm":
            raise RegistrationError(f"PSK identity {auth.identity!r} is a bootstrap credential: it "
                                    "may only bootstrap", "4.03")
        if auth.endpoint != endpoint:
            raise RegistrationError(f"PSK identity {auth.identity!r} belongs to endpoint "
                                    f"{auth.endpoint!r}, not {endpoint!r}", "4.03")

    async def check_same_channel(self, registration: Any, auth: Authentication, operation: str) -> None:
        """May ``auth`` Update, De-register or Send for ``registration``? 4.03 if not.

        A registration made over DTLS is only ever changed over DTLS by the same endpoint's
        identity; one made over plain CoAP is refused once the endpoint has credentials.
        """
        endpoint = registration.endpoint
        if registration.security != auth.mode:
            raise RegistrationError(f"{operation} for {endpoint!r} must come over the channel it "
                                    f"registered on ({_channel(registration.security)}), not "
                                    f"{auth.describe()}", "4.03")
        if auth.secure and (auth.endpoint != endpoint or auth.purpose != "dm"):
            raise RegistrationError(f"PSK identity {auth.identity!r} may not {operation} for "
                                    f"endpoint {endpoint!r}", "4.03")
        if not auth.secure:
            if self.required:
                raise RegistrationError(f"{operation} refused: this server accepts DTLS only", "4.03")
            if await self._has_credentials(endpoint):
                raise RegistrationError(f"endpoint {endpoint!r} has credentials: register again over "
                                        "DTLS (coaps)", "4.03")


async def _no_credentials(endpoint: str) -> bool:
    return False


def _channel(mode: str) -> str:
    return "plain CoAP" if mode == "none" else f"DTLS ({mode})"
