"""``lwm2m-server deploy create|status|list|pause|resume|cancel|retry|tag``: deployments from
the shell.

These work on the server's database (``--db``, like ``token`` and ``artifact``) through the same
service functions as the REST routes; a running server picks every change up on its next
reconcile pass (a fraction of a second) and publishes the same deployment and target events
(webhooks, event stream) as for a REST call; a server started later resumes what is there.
Errors print one ``error: ...`` line and exit 1 (``cli_errors``, as the other OTA commands).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from typing import Any

from ._datadir import add_data_dir_arg, settings_for

__all__ = ["register"]

DEPLOYMENT_STATES = ("running", "paused", "cancelled", "completed", "completed_with_failures")


def _cli(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``cli_errors`` applied when the command runs (its module imports the OTA libraries,
    which ``--help`` does not need)."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        from ._ota_cli import cli_errors

        return cli_errors(func)(args)
    return run


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
          f"stage {view['current_stage'] + 1}/{len(view['stages'])} "
          f"({view['released']}/{view['total']} released): {counts}")
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


@_cli
def _create(args: argparse.Namespace) -> int:
    service = _service()
    endpoints = [e for e in (args.endpoints or "").split(",") if e] or None
    spec = service.DeploymentSpec(
        artifact_id=args.artifact, endpoints=endpoints, tag=args.tag,
        stages=_csv_ints(args.stages), max_concurrent=args.max_concurrent,
        failure_threshold=args.failure_threshold, timeout=args.timeout, retries=args.retries,
        delivery=args.delivery, verify=args.verify, allow_downgrade=args.allow_downgrade)
    engine = _engine(args)
    try:
        dep = service.create_deployment(engine, spec)
        view = service.deployment_view(engine, int(dep.id), with_targets=False)  # type: ignore[arg-type]
        if not args.json:
            print(dep.id, flush=True)
            print(f"created deployment {dep.id} of artifact {args.artifact} to "
                  f"{view['total']} devices", file=sys.stderr, flush=True)
        if args.wait:
            view = _wait(service, engine, int(dep.id), args.poll, args.wait_timeout)  # type: ignore[arg-type]
    finally:
        engine.dispose()
    if args.wait:
        _print_view(view, args.json)
    elif args.json:
        print(json.dumps(view))
    if args.wait:
        # Only a deployment where every target succeeded is a success for a pipeline.
        return 0 if view["state"] == "completed" else 1
    return 0


def _wait(service: Any, engine: Any, deployment_id: int, poll: float,
          timeout: float) -> dict[str, Any]:
    """Poll until the deployment is final, cancelled, or paused (by its failure threshold or an
    operator: a pipeline should not wait for a person), or ``timeout`` seconds have passed;
    returns its view with targets."""
    import time

    deadline = time.monotonic() + timeout
    last = None
    while True:
        view: dict[str, Any] = service.deployment_view(engine, deployment_id)
        counts = ", ".join(f"{k} {v}" for k, v in view["counts"].items() if v)
        if counts != last:  # progress on stderr, one line per change
            print(f"deployment {deployment_id}: {view['state']}: {counts}", file=sys.stderr, flush=True)
            last = counts
        if view["state"] in ("completed", "completed_with_failures", "cancelled", "paused"):
            return view
        if time.monotonic() > deadline:
            print(f"error: deployment {deployment_id} still {view['state']} after {timeout:g} s",
                  file=sys.stderr)
            return view
        time.sleep(poll)


@_cli
def _status(args: argparse.Namespace) -> int:

    engine = _engine(args)
    try:
        _print_view(_service().deployment_view(engine, args.id, with_targets=not args.summary),
                    args.json)
    finally:
        engine.dispose()
    return 0


@_cli
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
    @_cli
    def run(args: argparse.Namespace) -> int:
        from ..rollout import service

        ops: dict[str, Callable[..., Any]] = {
            "pause": service.pause_deployment, "resume": service.resume_deployment,
            "cancel": service.cancel_deployment, "retry": service.retry_deployment}
        engine = _engine(args)
        try:
            # No event bus here: the service records the events for the running server.
            ops[name](engine, args.id, events=None)
            _print_view(service.deployment_view(engine, args.id, with_targets=False), args.json)
        finally:
            engine.dispose()
        return 0
    return run


@_cli
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
    c.add_argument("--verify", choices=["version", "result"], default="version",
                   help="what proves a firmware update: version (the new version in /3/0/3, "
                        "or in /5/0/7 with Update Result 1; default) or result (Update Result "
                        "1 after Execute Update)")
    c.add_argument("--allow-downgrade", action="store_true",
                   help="also update devices that run a newer version")
    c.add_argument("--wait", action="store_true",
                   help="wait until it ends (a running server drives it); exit 0 only when "
                        "every target succeeded")
    c.add_argument("--poll", type=float, default=1.0, help="seconds between looks with --wait")
    c.add_argument("--wait-timeout", type=float, default=600,
                   help="seconds --wait waits before it gives up with exit code 1 (default 600)")
    common(c)
    c.set_defaults(func=_create)

    s = sub.add_parser("status", help="a deployment and its targets")
    s.add_argument("id", type=int)
    s.add_argument("--summary", action="store_true", help="counts only, no target list")
    common(s)
    s.set_defaults(func=_status)

    ls = sub.add_parser("list", help="deployments, newest first")
    ls.add_argument("--state", choices=DEPLOYMENT_STATES)
    common(ls)
    ls.set_defaults(func=_list)

    for name, text in (("pause", "start no new targets"), ("resume", "continue a paused one"),
                       ("cancel", "cancel targets not yet updating"),
                       ("retry", "run the failed targets again")):
        a = sub.add_parser(name, help=text)
        a.add_argument("id", type=int)
        common(a)
        a.set_defaults(func=_action(name))

    t = sub.add_parser("tag", help="set the tags of a device (replaces its tags)")
    t.add_argument("endpoint")
    t.add_argument("tags", help="comma-separated tags ('' clears)")
    common(t)
    t.set_defaults(func=_tag)
