"""``lwm2m-server simulate``: run a fleet of simulated LwM2M devices against a server.

Unless told otherwise (``--trusted-key``, ``--model``), devices trust the SOTA public key of
the data folder (the one the server created or was given) and start with its default model,
so a fleet next to a freshly started server accepts the packages ``model build --sota`` signs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["register", "run_simulate", "parse_server_uri"]


class UsageError(ValueError):
    """A flag value the simulator cannot use; the message says which and why."""


def parse_server_uri(text: str) -> str:
    """``coap://HOST:PORT`` (port defaults to 5683); UsageError for anything else."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as e:
        raise UsageError(f"--server {text!r}: {e}") from None
    if parts.scheme != "coap" or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise UsageError(f"--server {text!r}: expected coap://HOST:PORT")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"coap://{host}:{port or 5683}"


def _rate(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"{name} must be between 0 and 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("simulate", help="run simulated LwM2M devices (TinyML Wasm models)",
                              description="Run COUNT simulated LwM2M 1.1 devices in this process.")
    p.add_argument("--server", required=True, help="LwM2M server, coap://HOST:PORT")
    p.add_argument("--count", type=int, default=1, help="number of devices (default 1)")
    p.add_argument("--prefix", default="sim-", help="endpoint name prefix (default sim-)")
    p.add_argument("--state-dir", default=None,
                   help="folder for per-device state: model slots, firmware version (default: "
                        "sim-state/ in the data folder)")
    p.add_argument("--lifetime", type=int, default=300, help="registration lifetime in seconds")
    p.add_argument("--binding", choices=("U", "UQ"), default="U", help="U, or UQ for queue mode")
    p.add_argument("--drop-rate", type=float, default=0.0, help="share of packets dropped, 0..1")
    p.add_argument("--latency", type=float, default=0.0, help="added latency in milliseconds")
    p.add_argument("--die-mid-download", type=float, default=0.0,
                   help="share of devices that die during their first download, 0..1")
    p.add_argument("--corrupt-download", type=float, default=0.0,
                   help="share of devices whose first download arrives corrupted, 0..1")
    p.add_argument("--trusted-key", type=Path,
                   help="PEM public key that signs SOTA packages (default: LWM2M_SOTA_PUBLIC_KEY, "
                        "else the data folder's keys/sota-signing.pub.pem)")
    p.add_argument("--model", type=Path,
                   help="Wasm model each new device starts with in slot A (default: the data "
                        "folder's models/default.wasm, else the packaged example classifier)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="data folder of the server (default: LWM2M_DATA_DIR, else "
                        "$XDG_DATA_HOME/lwm2m-server or ~/.local/share/lwm2m-server)")
    p.add_argument("--jitter", type=float, default=None,
                   help="seconds over which device starts are spread (default: count/200, at most 10)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=run_simulate)


def _data_dir_defaults(args: argparse.Namespace) -> None:
    """Fill --trusted-key, --model and --state-dir from the data folder; say what was used."""
    from lwm2m_server.config import Settings

    settings = Settings.from_args(data_dir=args.data_dir)
    if args.state_dir is None:
        args.state_dir = settings.data_dir / "sim-state"
    if args.trusted_key is None:
        args.trusted_key = settings.sota_public_key
        if args.trusted_key is None:
            print(f"warning: no SOTA public key in {settings.data_dir} and no --trusted-key: "
                  "devices will refuse every model package (result 53); start the server once "
                  "in this data folder, or pass --trusted-key PUBLIC.pem", file=sys.stderr)
    if args.model is None and settings.default_model.is_file():
        args.model = settings.default_model
    print(f"lwm2m-server simulate: data folder {settings.data_dir}; trusted key "
          f"{args.trusted_key or 'none'}; model {args.model or 'packaged example classifier'}; "
          f"state {args.state_dir}", file=sys.stderr)


def _fleet_config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from lwm2m_server.sim.fleet import FleetConfig

    if args.count < 1:
        raise UsageError(f"--count must be at least 1, got {args.count}")
    if args.lifetime < 1:
        raise UsageError(f"--lifetime must be positive, got {args.lifetime}")
    if args.latency < 0:
        raise UsageError(f"--latency must not be negative, got {args.latency}")
    _data_dir_defaults(args)
    key = None
    if args.trusted_key is not None:
        from ota.errors import OtaError
        from ota.keys import load_public_key
        try:
            key = load_public_key(args.trusted_key.read_bytes())
        except OSError as e:
            raise UsageError(f"--trusted-key {args.trusted_key}: {e.strerror}") from None
        except OtaError as e:
            raise UsageError(f"--trusted-key {args.trusted_key}: {e}") from None
    model = None
    if args.model is None:
        from lwm2m_server.datadir import packaged_default_model
        model = packaged_default_model()
    else:
        from lwm2m_server.sim.errors import ModelError
        from lwm2m_server.sim.runtime import check_model
        try:
            model = args.model.read_bytes()
            check_model(model)
        except OSError as e:
            raise UsageError(f"--model {args.model}: {e.strerror}") from None
        except ModelError as e:
            raise UsageError(f"--model {args.model}: {e}") from None
    jitter = args.jitter if args.jitter is not None else min(10.0, args.count / 200)
    return FleetConfig(
        server=parse_server_uri(args.server), count=args.count, prefix=args.prefix,
        state_dir=str(args.state_dir), lifetime=args.lifetime, binding=args.binding,
        drop_rate=_rate("--drop-rate", args.drop_rate), latency_ms=args.latency,
        die_mid_download=_rate("--die-mid-download", args.die_mid_download),
        corrupt_download=_rate("--corrupt-download", args.corrupt_download),
        trusted_key=key, initial_model=model, jitter=max(0.0, jitter))


async def _run(config, duration: float | None) -> int:  # type: ignore[no-untyped-def]
    from lwm2m_server.sim.fleet import Fleet

    fleet = Fleet(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await fleet.start()
    print(f"started {config.count} devices against {config.server}", file=sys.stderr)
    reporter = loop.create_task(_report(fleet))
    try:
        await asyncio.wait_for(stop.wait(), duration)
    except asyncio.TimeoutError:
        pass
    reporter.cancel()
    print(f"stopping: {fleet.registered()}/{config.count} registered", file=sys.stderr)
    await fleet.stop()
    return 0


async def _report(fleet) -> None:  # type: ignore[no-untyped-def]
    last = -1
    while True:
        n = fleet.registered()
        if n != last:
            print(f"registered {n}/{len(fleet.devices)}", file=sys.stderr)
            last = n
        await asyncio.sleep(1.0)


def run_simulate(args: argparse.Namespace) -> int:
    """Entry point of ``lwm2m-server simulate``; 2 for bad flags."""
    try:
        config = _fleet_config(args)
    except UsageError as e:
        print(f"lwm2m-server simulate: {e}", file=sys.stderr)
        return 2
    return asyncio.run(_run(config, args.duration))
