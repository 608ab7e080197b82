"""``lwm2m-server devices list|read|write|execute|observe``: devices of a running server, over REST.

Plural on purpose: ``lwm2m-server device add|show|remove`` (singular) provisions a device's
DTLS credentials in the database; these verbs act on registered devices through the server
(``--server``/``--token``, see ``remote``). A request to a sleeping (queue-mode) device that
does not finish within ``--timeout`` answers with the queued request's id (HTTP 202), printed
as is.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from typing import Any

from . import remote
from ._help import add_parser

__all__ = ["register"]


def _quoted(endpoint: str) -> str:
    return urllib.parse.quote(endpoint, safe="")


def _path(path: str) -> str:
    """``/3/0/1`` or ``3/0/1`` -> ``3/0/1`` (the REST routes take the path after a slash)."""
    return path.strip("/")


def _value(text: str) -> Any:
    """A JSON value where the text is one (300, true, "x", [..]), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _show(answer: Any, as_json: bool) -> None:
    if as_json or not isinstance(answer, dict) or "values" not in answer:
        print(json.dumps(answer))
        return
    for path, value in answer["values"].items():
        print(f"{path} = {json.dumps(value)}")


@remote.fail
def _list(args: argparse.Namespace) -> int:
    online = None if args.online is None else str(args.online).lower()
    rows = remote.client_from_args(args).get("/devices", online=online)
    if args.json:
        remote.print_json(rows)
        return 0
    print(f"{'endpoint':<28} {'online':<7} {'lwm2m':<6} {'binding':<8} {'lifetime':>8}  last seen")
    for d in rows:
        print(f"{d['endpoint']:<28} {'yes' if d['online'] else 'no':<7} {d['lwm2m_version']:<6} "
              f"{d['binding']:<8} {d['lifetime']:>8}  {d['last_seen'] or '-'}")
    return 0


@remote.fail
def _read(args: argparse.Namespace) -> int:
    answer = remote.client_from_args(args).call(
        "GET", f"/devices/{_quoted(args.endpoint)}/data/{_path(args.path)}",
        params={"timeout": args.timeout})
    _show(answer, args.json)
    return 0


@remote.fail
def _write(args: argparse.Namespace) -> int:
    if args.values is not None:
        try:
            values = json.loads(args.values)
        except ValueError as e:
            raise remote.RemoteError(f"--values must be a JSON object: {e}") from None
        if not isinstance(values, dict):
            raise remote.RemoteError("--values must be a JSON object of path -> value")
    elif args.value is not None:
        values = {"/" + _path(args.path): _value(args.value)}
    else:
        raise remote.RemoteError("give a VALUE or --values JSON")
    answer = remote.client_from_args(args).call(
        "PUT", f"/devices/{_quoted(args.endpoint)}/data/{_path(args.path)}",
        params={"timeout": args.timeout}, json_body={"values": values})
    print(json.dumps(answer))
    return 0


@remote.fail
def _execute(args: argparse.Namespace) -> int:
    body = {} if args.args is None else {"args": args.args}
    answer = remote.client_from_args(args).call(
        "POST", f"/devices/{_quoted(args.endpoint)}/execute/{_path(args.path)}",
        params={"timeout": args.timeout}, json_body=body)
    print(json.dumps(answer))
    return 0


@remote.fail
def _observe(args: argparse.Namespace) -> int:
    client = remote.client_from_args(args)
    route = f"/devices/{_quoted(args.endpoint)}/observe/{_path(args.path)}"
    if args.cancel:
        print(json.dumps(client.call("DELETE", route, params={"timeout": args.timeout})))
        return 0
    if not args.follow:
        _show(client.call("POST", route, params={"timeout": args.timeout}, json_body={}), args.json)
        return 0
    # Subscribe first, so no notification between the answer and the stream is lost.
    started: list[Any] = []

    def start() -> None:
        started.append(client.call("POST", route, params={"timeout": args.timeout}, json_body={}))
        _show(started[0], args.json)
        sys.stdout.flush()

    prefix = "/" + _path(args.path)
    try:
        for ev in client.events("notification", endpoint=args.endpoint, on_open=start):
            values = {p: v for p, v in (ev.get("data", {}).get("values") or {}).items()
                      if p == prefix or p.startswith(prefix + "/")}
            if values:
                _show({"path": prefix, "values": values, "time": ev.get("time")}, args.json)
                sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    return 0


def register(subparsers: Any) -> None:
    """Add ``devices list|read|write|execute|observe`` to the CLI."""
    p = add_parser(subparsers, "devices", help="registered devices of a running server: list, "
                                               "read, write, execute, observe (REST)")
    sub = p.add_subparsers(dest="devices_command", metavar="ACTION", required=True)

    def common(sp: argparse.ArgumentParser, device: bool = True) -> None:
        if device:
            sp.add_argument("endpoint", help="the device's endpoint name")
            sp.add_argument("path", help="LwM2M path, e.g. /3/0 or /1/0/1")
            sp.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                            help="seconds to wait for the device (default: the server's "
                                 "request timeout; a sleeping device: the request is queued)")
        sp.add_argument("--json", action="store_true", help="print JSON")
        remote.add_remote_args(sp)

    ls = add_parser(sub, "list", help="registered devices, by endpoint name")
    online = ls.add_mutually_exclusive_group()
    online.add_argument("--online", dest="online", action="store_const", const=True, default=None,
                        help="only devices that are online")
    online.add_argument("--offline", dest="online", action="store_const", const=False,
                        help="only devices that are offline")
    common(ls, device=False)
    ls.set_defaults(func=_list)

    r = add_parser(sub, "read", help="Read a path; prints path = value lines")
    common(r)
    r.set_defaults(func=_read)

    w = add_parser(sub, "write", help="Write a value (JSON where it parses, else text)")
    common(w)
    w.add_argument("value", nargs="?", help="the value for PATH, e.g. 300 or '\"text\"'")
    w.add_argument("--values", help='JSON object of path -> value, e.g. {"/1/0/1": 300}')
    w.set_defaults(func=_write)

    x = add_parser(sub, "execute", help="Execute a resource")
    common(x)
    x.add_argument("--args", help="execute arguments, e.g. 0='1,2'")
    x.set_defaults(func=_execute)

    o = add_parser(sub, "observe", help="start observing (prints the current value), follow "
                                        "notifications, or cancel")
    common(o)
    how = o.add_mutually_exclusive_group()
    how.add_argument("--follow", action="store_true",
                     help="keep printing notifications until interrupted")
    how.add_argument("--cancel", action="store_true", help="cancel the observation")
    o.set_defaults(func=_observe)
