"""``lwm2m-server deploy create|status|list|pause|resume|cancel|tag``: deployments from the shell.

These work on the server's database (``--db``, like ``token`` and ``artifact``); a running
server picks every change up on its next reconcile pass (a fraction of a second), and a server
started later resumes what is there. Errors print one ``error: ...`` line and exit 1
(``cli_errors``, as the other OTA commands).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from ._datadir import add_data_dir_arg, settings_for
from ._ota_cli import cli_errors

__all__ = ["register"]


def _service() -> Any:
    from ..rollout import service  # sqlmodel: loaded when a deploy command runs, not for --help

    return service


def _engine(args: argparse.Namespace, *, quiet: bool = False) -> Any:
    from ..store.db import init_db, make_engine

    engine = make_engine(settings_for(args, quiet=quiet, db_url=args.db).db_url)
    init_db(engine)
    return engine


def _print_view(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(view))
        return
    counts = ", ".join(f"{k} {v}" for k, v in view["counts"].items() if v)
    print(f"deployment {view['id']}: {view['state']} ({view['kind']} {view['version']}), "
          f"stage {view['current_stage'] + 1}/{len(view['stages'])}: {counts}")
    if view.get("reason"):
        print(f"  reason: {view['reason']}")
    for t in view.get("targets", []):
        result = "" if t["result"] is None else f" result {t['result']}"
        reason = f"  {t['reason']}" if t["reason"] else ""
        print(f"  {t['endpoint']:<24} {t['state']:<12} {t['progress'] * 100:5.1f}%{result}{reason}")


def _csv_ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--stages takes comma-separated percentages like 1,10,100, got {text!r}") from None


@cli_errors
def _create(args: argparse.Namespace) -> int:
    endpoints = [e for e in (args.endpoints or "").split(",") if e] or None
    spec = _service().DeploymentSpec(
        artifact_id=args.artifact, endpoints=endpoints, tag=args.tag,
        stages=_csv_ints(args.stages), max_concurrent=args.max_concurrent,
        failure_threshold=args.failure_threshold, timeout=args.timeout, retries=args.retries,
        delivery=args.delivery)
    engine = _engine(args)
    try:
        dep = _service().create_deployment(engine, spec)
        view = _service().deployment_view(engine, int(dep.id), with_targets=False)  # type: ignore[arg-type]
    finally:
        engine.dispose()
    if args.json and not args.wait:
        print(json.dumps(view))
    elif not args.wait:
        print(dep.id)
    print(f"created deployment {dep.id} of artifact {args.artifact} to "
          f"{sum(view['counts'].values())} devices", file=sys.stderr)
    if args.wait:
        return _wait(args, int(dep.id))  # type: ignore[arg-type]
    return 0


_FINAL = ("completed", "cancelled")


def _wait(args: argparse.Namespace, dep_id: int) -> int:
    """Follow a deployment until it ends; 0 only when every target succeeded."""
    import time

    engine = _engine(args, quiet=True)
    deadline = time.monotonic() + args.wait_timeout
    last = None
    try:
        while True:
            view = _service().deployment_view(engine, dep_id, with_targets=False)
            counts = ", ".join(f"{k} {v}" for k, v in view["counts"].items() if v)
            if counts != last:
                print(f"deployment {dep_id}: {view['state']}: {counts}", file=sys.stderr)
                last = counts
            if view["state"] in _FINAL or view["state"] == "paused":
                break
            if time.monotonic() > deadline:
                print(f"error: deployment {dep_id} still {view['state']} after "
                      f"{args.wait_timeout:g} s", file=sys.stderr)
                return 1
            time.sleep(0.5)
        _print_view(_service().deployment_view(engine, dep_id), args.json)
    finally:
        engine.dispose()
    total = sum(view["counts"].values())
    return 0 if view["counts"].get("succeeded", 0) == total and view["state"] == "completed" else 1


@cli_errors
def _status(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        _print_view(_service().deployment_view(engine, args.id, with_targets=not args.summary),
                    args.json)
    finally:
        engine.dispose()
    return 0


@cli_errors
def _list(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        views = _service().list_deployments(engine, state=args.state)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(views))
    else:
        for v in views:
            _print_view(v, False)
    return 0


def _action(name: str) -> Callable[[argparse.Namespace], int]:
    @cli_errors
    def run(args: argparse.Namespace) -> int:
        op: Callable[..., Any] = getattr(_service(), f"{name}_deployment")
        engine = _engine(args)
        try:
            op(engine, args.id)
            _print_view(_service().deployment_view(engine, args.id, with_targets=False), args.json)
        finally:
            engine.dispose()
        return 0
    return run


@cli_errors
def _tag(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        tags = _service().set_tags(engine, args.endpoint, [t for t in args.tags.split(",") if t])
    finally:
        engine.dispose()
    print(json.dumps({"endpoint": args.endpoint, "tags": tags}))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("deploy", help="create and steer OTA deployments")
    sub = p.add_subparsers(dest="deploy_command", metavar="ACTION", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--db", default=None, help="database URL (default: LWM2M_DB_URL, "
                                                   "else lwm2m.db in the data folder)")
        add_data_dir_arg(sp)
        sp.add_argument("--json", action="store_true", help="print JSON")

    c = sub.add_parser("create", help="deploy an artifact to endpoints or a tag")
    c.add_argument("--artifact", type=int, required=True, help="artifact id")
    target = c.add_mutually_exclusive_group(required=True)
    target.add_argument("--endpoints", help="comma-separated endpoint names")
    target.add_argument("--tag", help="every device with this tag")
    c.add_argument("--stages", default="100", help="cumulative percentages (default 100), "
                                                   "e.g. 1,10,100")
    c.add_argument("--max-concurrent", type=int, default=10)
    c.add_argument("--failure-threshold", type=float, default=0.2,
                   help="fraction of released targets that may fail before it pauses")
    c.add_argument("--timeout", type=float, default=600, help="seconds per device attempt")
    c.add_argument("--retries", type=int, default=2)
    c.add_argument("--delivery", choices=["auto", "pull", "push"], default="auto")
    c.add_argument("--wait", action="store_true",
                   help="follow it until it ends (a running server does the work); exit 0 only "
                        "when every target succeeded")
    c.add_argument("--wait-timeout", type=float, default=600, help="seconds --wait waits (default 600)")
    common(c)
    c.set_defaults(func=_create)

    s = sub.add_parser("status", help="a deployment and its targets")
    s.add_argument("id", type=int)
    s.add_argument("--summary", action="store_true", help="counts only, no target list")
    common(s)
    s.set_defaults(func=_status)

    ls = sub.add_parser("list", help="deployments, newest first")
    ls.add_argument("--state", choices=["running", "paused", "cancelled", "completed"])
    common(ls)
    ls.set_defaults(func=_list)

    for name, text in (("pause", "start no new targets"), ("resume", "continue a paused one"),
                       ("cancel", "cancel targets not yet updating")):
        a = sub.add_parser(name, help=text)
        a.add_argument("id", type=int)
        common(a)
        a.set_defaults(func=_action(name))

    t = sub.add_parser("tag", help="set the tags of a device (replaces its tags)")
    t.add_argument("endpoint")
    t.add_argument("tags", help="comma-separated tags ('' clears)")
    common(t)
    t.set_defaults(func=_tag)
