"""The bootstrap server (LwM2M 1.1 client-initiated bootstrap, TS Core §6.1).

A device sends Bootstrap-Request (``POST /bs?ep=NAME``); once the channel is allowed and a
configuration applies, it gets 2.04 and the server runs the sequence on the same channel
(the device's DTLS session or its plain CoAP address):

1. Bootstrap-Delete ``/`` (the device keeps its Bootstrap-Server account);
2. Bootstrap-Discover ``/0`` to see which Security instance ids remain taken (a device that does
   not support it, LwM2M 1.0, gets the new account at /0/1);
3. Bootstrap-Write of a Security (/0) instance: server URI, mode, PSK identity and key, SSID;
4. Bootstrap-Write of a Server (/1) instance: SSID, lifetime, notification storing, binding;
5. Bootstrap-Finish (``POST /bs``); over DTLS the server then closes the session
   (close_notify), so the device connects again with the credential it was given.

Writes go in TLV (11542), or the next of SenML CBOR and SenML JSON when the device refuses a
format (the ``pct`` of the Bootstrap-Request, if any, first). Any other 4.xx/5.xx answer or
timeout ends the sequence with a ``bootstrap_failed`` event (with the step and the reason);
the device retries with a new Bootstrap-Request. Success is a ``bootstrapped`` event.

Channel rules (docs/security.md): over DTLS only the bootstrap credential of that very endpoint
may ask; over plain CoAP only when the server's security is ``optional``, the endpoint has no
bootstrap credential, and the configuration hands out no key (mode ``nosec``): a PSK is never
sent in clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..codecs import codec_for
from ..events import EventBus, new_event
from ..model import Path, build, default_registry
from ..protocol.bootstrap import (
    BootstrapConfig,
    BootstrapError,
    config_from_json,
    free_instance,
    instances_in_links,
    security_values,
    server_values,
)
from ..protocol.security import Authentication
from ..protocol.transport import OutgoingRequest, TransportError
from ..tasks import cancel_and_wait
from .site import peer_address

if TYPE_CHECKING:  # the server hands the store in; the CoAP adapter does not import it
    from ..store.credentials import CredentialStore

__all__ = ["BootstrapServer"]

log = logging.getLogger(__name__)

_TLV = 11542
# Formats a Bootstrap-Write may go in, in the order tried: TLV (every 1.0 client), SenML CBOR,
# SenML JSON (1.1 clients may support only one of the SenML ones; Wakaama's default build has
# SenML JSON only and answers TLV with 4.00). A ``pct`` in the Bootstrap-Request goes first.
_WRITE_FORMATS = (_TLV, 112, 110)
# Answers that mean "not in this format" (clients answer 4.00 for a payload they cannot parse).
_FORMAT_REFUSALS = ("4.00", "4.06", "4.15")
_LINK_FORMAT = 40
_WILDCARDS = ("", "::", "0.0.0.0", "[::]")
# aiocoap sends the 2.04 of the Bootstrap-Request after render returns; the device must see it
# before the first Bootstrap-Delete (some clients drop requests that arrive first).
_START_DELAY = 0.05


class _StepFailed(Exception):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


def _formats(pct: int | None) -> list[int]:
    """The write formats to try, the device's preferred one (``pct``) first when we have it."""
    first = [pct] if pct in _WRITE_FORMATS else []
    return first + [f for f in _WRITE_FORMATS if f not in first]


class BootstrapServer:
    """Serves ``POST /bs`` and runs one bootstrap sequence per endpoint at a time."""

    def __init__(self, transport: Any, credentials: CredentialStore, events: EventBus,
                 settings: Any, *, coaps_port: int | None, timeout: float = 10.0) -> None:
        self.transport = transport
        self.credentials = credentials
        self.events = events
        self.settings = settings
        self.coaps_port = coaps_port
        self.coap_port: int | None = None  # set by the server once plain CoAP is bound
        self.timeout = timeout
        self._running: dict[str, asyncio.Task[None]] = {}
        self._registry = default_registry()

    async def request(self, query: Iterable[str], remote: Any, auth: Authentication) -> tuple[str, str]:
        """Answer a Bootstrap-Request: ("2.04", "") and the sequence starts, or (code, reason)."""
        params = dict(q.partition("=")[::2] for q in query)
        endpoint = params.get("ep", "")
        if not endpoint or len(endpoint) > 255:
            return "4.00", "Bootstrap-Request needs the endpoint name: POST /bs?ep=NAME"
        try:
            self._check_channel(endpoint, auth)
            cfg = await asyncio.to_thread(self._config_for, endpoint)
            if not auth.secure and cfg.security_mode != "nosec":
                raise PermissionError("bootstrap over plain CoAP would send a PSK in clear: use "
                                      "coaps with the endpoint's bootstrap credentials")
        except PermissionError as e:
            self._fail(endpoint, "request", str(e), auth)
            return "4.03", str(e)
        except BootstrapError as e:
            self._fail(endpoint, "request", str(e), auth)
            return "4.00", str(e)
        old = self._running.pop(endpoint, None)
        if old is not None:
            old.cancel()  # the device started over: its earlier sequence no longer matters
        pct = params.get("pct", "")
        task = asyncio.create_task(self._run(endpoint, cfg, remote, auth,
                                             int(pct) if pct.isdigit() else None))
        self._running[endpoint] = task
        task.add_done_callback(lambda t: self._running.pop(endpoint, None)
                               if self._running.get(endpoint) is t else None)
        return "2.04", ""

    def _check_channel(self, endpoint: str, auth: Authentication) -> None:
        if auth.secure:
            if auth.purpose != "bootstrap" or auth.endpoint != endpoint:
                raise PermissionError(f"PSK identity {auth.identity!r} is not the bootstrap "
                                      f"credential of endpoint {endpoint!r}")
            return
        if self.settings.security == "required":
            raise PermissionError("this server accepts DTLS only: bootstrap over coaps")
        if self.credentials.get(endpoint, "bootstrap") is not None:
            raise PermissionError(f"endpoint {endpoint!r} has bootstrap credentials: bootstrap "
                                  "over coaps")

    def _config_for(self, endpoint: str) -> BootstrapConfig:
        data = self.credentials.bootstrap_for(endpoint)
        if data is None:
            raise BootstrapError(f"no bootstrap configuration for endpoint {endpoint!r} and no "
                                 "default template")
        return config_from_json(data)

    def _server_uri(self, cfg: BootstrapConfig) -> str:
        if cfg.server_uri:
            return cfg.server_uri
        public = self.settings.public_base_url
        host = urlsplit(public).hostname if public else self.settings.coap_host
        if not host or host in _WILDCARDS:
            host = "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        if cfg.security_mode == "psk":
            if self.coaps_port is None:
                raise BootstrapError("mode psk needs the DTLS listener (coaps is off)")
            return f"coaps://{host}:{self.coaps_port}"
        return f"coap://{host}:{self.coap_port or self.settings.coap_port}"

    def _dm_credentials(self, endpoint: str, cfg: BootstrapConfig) -> tuple[bytes, bytes]:
        """(identity, key) the device will register with; stored as its DM credential."""
        if cfg.security_mode == "nosec":
            return b"", b""
        cred = self.credentials.get(endpoint, "dm")
        if cred is None:
            key = secrets.token_bytes(16)
            self.credentials.put(endpoint, endpoint, key, "dm")
            return endpoint.encode(), key
        return cred.psk_identity.encode(), cred.key

    async def _send(self, step: str, remote: Any, address: tuple[str, int], req: OutgoingRequest,
                    ok: tuple[str, ...]) -> Any:
        try:
            resp = await self.transport.request(remote, address, req, self.timeout)
        except TransportError as e:
            raise _StepFailed(step, f"no answer: {e}") from None
        if resp.code not in ok:
            detail = resp.payload[:200].decode("utf-8", "replace")
            raise _StepFailed(step, f"device answered {resp.code}" + (f": {detail}" if detail else ""))
        return resp

    async def _run(self, endpoint: str, cfg: BootstrapConfig, remote: Any, auth: Authentication,
                   pct: int | None = None) -> None:
        address = peer_address(remote)
        await asyncio.sleep(_START_DELAY)
        step = "prepare"
        try:
            uri = self._server_uri(cfg)
            identity, key = await asyncio.to_thread(self._dm_credentials, endpoint, cfg)
            # Only the accounts are replaced: a Delete of "/" would also remove every application
            # instance (LwM2M 1.1 6.1.7.5 keeps only the Bootstrap-Server account and Device
            # 3/0), and a device such as the Zephyr client does not recreate its Firmware, Software
            # Management or model objects afterwards. Leshan's default does the same.
            for oid in ("0", "1"):
                step = f"Bootstrap-Delete /{oid}"
                await self._send(step, remote, address, OutgoingRequest("DELETE", (oid,)),
                                 ("2.02",))
            step = "Bootstrap-Discover /0"
            # Without Discover (LwM2M 1.0) the Bootstrap-Server account is taken to be /0/0, where
            # clients keep it by convention, so the new account goes to /0/1.
            taken: set[int] = {0}
            with contextlib.suppress(_StepFailed):
                resp = await self._send(step, remote, address,
                                        OutgoingRequest("GET", ("0",), accept=_LINK_FORMAT), ("2.05",))
                taken = instances_in_links(resp.payload.decode("utf-8", "replace"), 0)
            sec_id = free_instance(taken)
            step = f"Bootstrap-Write /0/{sec_id}"
            formats = _formats(pct)
            await self._write(step, remote, address, Path.of(0, sec_id),
                              security_values(sec_id, uri, cfg.security_mode, identity, key,
                                              cfg.short_server_id), formats)
            step = "Bootstrap-Write /1/0"
            await self._write(step, remote, address, Path.of(1, 0), server_values(0, cfg), formats)
            step = "Bootstrap-Finish"
            await self._send(step, remote, address, OutgoingRequest("POST", ("bs",)), ("2.04",))
        except asyncio.CancelledError:
            raise
        except _StepFailed as e:
            self._fail(endpoint, e.step, e.reason, auth)
            return
        except Exception as e:  # a store or secret problem: the device must hear nothing more
            log.exception("bootstrap of %s failed at %s", endpoint, step)
            self._fail(endpoint, step, f"server error: {e}", auth)
            return
        log.info("bootstrapped %s over %s: server %s", endpoint, auth.describe(), uri)
        self.events.publish(new_event("bootstrapped", endpoint, server_uri=uri,
                                      security_mode=cfg.security_mode, security=auth.mode,
                                      psk_identity=identity.decode("utf-8", "replace") or None,
                                      short_server_id=cfg.short_server_id))
        if auth.secure:
            # The bootstrap credential's session is done: the device must connect again with
            # the credential it was given (see coap/dtls.close_session).
            from .dtls import close_session

            await asyncio.sleep(_START_DELAY)  # let the ACK of Bootstrap-Finish's answer go first
            close_session(remote, "bootstrap finished")

    async def _write(self, step: str, remote: Any, address: tuple[str, int], path: Path,
                     values: dict[Path, Any], formats: list[int]) -> None:
        """Bootstrap-Write ``values`` at ``path`` in the first of ``formats`` the device takes;
        ``formats`` is reordered so the next write starts with the one that worked."""
        node = build(values, path, self._registry)
        refused: list[str] = []
        for fmt in list(formats):
            payload = codec_for(fmt).encode(node, path, self._registry)
            req = OutgoingRequest("PUT", tuple(str(i) for i in path.ids), payload=payload,
                                  content_format=fmt)
            try:
                await self._send(step, remote, address, req, ("2.04",))
            except _StepFailed as e:
                if not any(e.reason.startswith(f"device answered {c}") for c in _FORMAT_REFUSALS):
                    raise
                refused.append(f"{fmt}: {e.reason.removeprefix('device answered ')}")
                continue
            formats.remove(fmt)
            formats.insert(0, fmt)
            return
        raise _StepFailed(step, "device refused every format (" + "; ".join(refused) + ")")

    def _fail(self, endpoint: str, step: str, reason: str, auth: Authentication) -> None:
        log.warning("bootstrap of %s refused or failed at %s: %s", endpoint, step, reason)
        self.events.publish(new_event("bootstrap_failed", endpoint, step=step, reason=reason,
                                      security=auth.mode))

    async def close(self) -> None:
        await cancel_and_wait(*self._running.values())
        self._running.clear()
