"""``lwm2m-server deploy create|status|list|pause|resume|cancel|retry|tag``: deployments from
the shell.

They talk to a running server over REST (``--server``/``--token``, see ``remote``); ``create
--wait`` follows the deployment on the event stream (``follow``) and its exit code says how it
ended. With ``--db`` they work on the server's database instead, through the same service
functions as the REST routes; a running server picks every change up on its next reconcile
pass and publishes the same deployment and target events as for a REST call.
Errors print one ``error: ...`` line and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from . import remote
from ._datadir import add_data_dir_arg, settings_for
from ._ota_cli import cli_errors
from ._help import add_parser

__all__ = ["register"]

DEPLOYMENT_STATES = ("running", "paused", "cancelled", "completed", "completed_with_failures")


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


@cli_errors
def _create_local(args: argparse.Namespace) -> int:
    from ..rollout import service

    spec = service.DeploymentSpec(**_spec(args))
    engine = _engine(args)
    try:
        dep = service.create_deployment(engine, spec)
        view = service.deployment_view(engine, int(dep.id), with_targets=False)  # type: ignore[arg-type]
        if not args.json:
            print(dep.id, flush=True)
            print(f"created deployment {dep.id} of artifact {args.artifact} to "
                  f"{view['total']} devices", file=sys.stderr, flush=True)
        if args.wait:
            view = _wait(service, engine, int(dep.id), args.poll, args.timeout)  # type: ignore[arg-type]
    finally:
        engine.dispose()
    if args.wait:
        _print_view(view, args.json)
    elif args.json:
        print(json.dumps(view))
    if args.wait:
        from .follow import exit_code

        # Only a deployment where every target succeeded is a success for a pipeline.
        return exit_code(view)
    return 0


def _wait(service: Any, engine: Any, deployment_id: int, poll: float,
          timeout: float | None) -> dict[str, Any]:
    """Poll until the deployment is final, cancelled, or paused (by its failure threshold or an
    operator: a pipeline should not wait for a person) or ``timeout`` passes; its view."""
    import time

    from .follow import FINAL_STATES

    began = time.monotonic()
    last = None
    while True:
        view: dict[str, Any] = service.deployment_view(engine, deployment_id)
        counts = ", ".join(f"{k} {v}" for k, v in view["counts"].items() if v)
        if counts != last:  # progress on stderr, one line per change
            print(f"deployment {deployment_id}: {view['state']}: {counts}", file=sys.stderr,
                  flush=True)
            last = counts
        if view["state"] in FINAL_STATES:
            return view
        if timeout is not None and time.monotonic() - began > timeout:
            print(f"error: deployment {deployment_id} still {view['state']} after {timeout:g} s",
                  file=sys.stderr)
            return view
        time.sleep(poll)


@cli_errors
def _status_local(args: argparse.Namespace) -> int:
    from ..rollout import service

    engine = _engine(args)
    try:
        if args.wait:
            from .follow import exit_code

            view = _wait(service, engine, args.id, args.poll, args.timeout)
            _print_view(view, args.json)
            return exit_code(view)
        _print_view(service.deployment_view(engine, args.id, with_targets=not args.summary),
                    args.json)
    finally:
        engine.dispose()
    return 0


@cli_errors
def _list_local(args: argparse.Namespace) -> int:
    from ..rollout import service

    engine = _engine(args)
    try:
        views = service.list_deployments(engine, state=args.state)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(views))
    else:
        for v in views:
            _print_view(v, False)
    return 0


def _action_local(name: str) -> Callable[[argparse.Namespace], int]:
    @cli_errors
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


@cli_errors
def _tag_local(args: argparse.Namespace) -> int:
    from ..rollout import service

    engine = _engine(args)
    try:
        tags = service.set_tags(engine, args.endpoint, [t for t in args.tags.split(",") if t])
    finally:
        engine.dispose()
    print(json.dumps({"endpoint": args.endpoint, "tags": tags}))
    return 0


def _spec(args: argparse.Namespace) -> dict[str, Any]:
    """The ``POST /api/v1/deployments`` body (and ``DeploymentSpec`` fields) from the flags."""
    endpoints = [e for e in (args.endpoints or "").split(",") if e] or None
    return {"artifact_id": args.artifact, "endpoints": endpoints, "tag": args.tag,
            "stages": _csv_ints(args.stages), "max_concurrent": args.max_concurrent,
            "failure_threshold": args.failure_threshold, "timeout": args.device_timeout,
            "retries": args.retries, "delivery": args.delivery, "verify": args.verify,
            "allow_downgrade": args.allow_downgrade}


def _follow(args: argparse.Namespace, client: Any, start: Callable[[], int]) -> int:
    """Follow to the end (progress on stderr with --json: stdout keeps the one document)."""
    from .follow import follow

    view, code = follow(client, start, timeout=args.timeout,
                        out=sys.stderr if args.json else sys.stdout)
    if args.json:
        remote.print_json({**view, "exit_code": code})
    else:
        _print_view(view, False)
        if code:
            print(f"error: deployment {view['id']} ended {view['state']}"
                  + (" (timed out waiting)" if view["state"] not in ("completed",
                     "completed_with_failures", "cancelled", "paused") else ""),
                  file=sys.stderr)
    return code


@remote.fail
def _create(args: argparse.Namespace) -> int:
    if remote.use_local_db(args):
        return _create_local(args)
    try:
        body = _spec(args)
    except ValueError as e:
        raise remote.RemoteError(str(e)) from None
    client = remote.client_from_args(args)

    def start() -> int:
        created = client.post("/deployments", body)
        if not args.json:
            print(f"created deployment {created['id']} of artifact {args.artifact}",
                  file=sys.stderr, flush=True)
        return int(created["id"])

    if args.wait:
        return _follow(args, client, start)
    dep_id = start()
    view = client.get(f"/deployments/{dep_id}")
    if args.json:
        remote.print_json(view)
    else:
        print(dep_id)  # alone on stdout: DEP=$(lwm2m-server deploy create ...)
    return 0


@remote.fail
def _status(args: argparse.Namespace) -> int:
    if remote.use_local_db(args):
        return _status_local(args)
    client = remote.client_from_args(args)
    if args.wait:
        return _follow(args, client, lambda: int(args.id))
    view = client.get(f"/deployments/{args.id}")
    if args.summary:
        view.pop("targets", None)
    _print_view(view, args.json)
    return 0


@remote.fail
def _list(args: argparse.Namespace) -> int:
    if remote.use_local_db(args):
        return _list_local(args)
    views = remote.client_from_args(args).get("/deployments", state=args.state, limit=args.limit)
    if args.json:
        remote.print_json(views)
    else:
        for v in views:
            _print_view(v, False)
    return 0


def _action(name: str) -> Callable[[argparse.Namespace], int]:
    local = _action_local(name)

    @remote.fail
    def run(args: argparse.Namespace) -> int:
        if remote.use_local_db(args):
            return local(args)
        view = remote.client_from_args(args).post(f"/deployments/{args.id}/{name}")
        _print_view(view, args.json)
        return 0
    return run


@remote.fail
def _tag(args: argparse.Namespace) -> int:
    if remote.use_local_db(args):
        return _tag_local(args)
    tags = [t for t in args.tags.split(",") if t]
    answer = remote.client_from_args(args).call("PUT", f"/devices/{args.endpoint}/tags",
                                                json_body={"tags": tags})
    print(json.dumps(answer))
    return 0


def register(subparsers: Any) -> None:
    """Add ``deploy create|status|list|pause|resume|cancel|retry|tag`` to the CLI."""
    p = add_parser(subparsers, "deploy", help="create and steer OTA deployments")
    sub = p.add_subparsers(dest="deploy_command", metavar="ACTION", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--json", action="store_true", help="print JSON")
        sp.add_argument("--db", default=None, help=remote.DB_HELP)
        add_data_dir_arg(sp)
        remote.add_remote_args(sp)

    def waiting(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--timeout", "--wait-timeout", type=float, default=None, metavar="SECONDS",
                        help="with --wait: give up waiting after this long, exit code 6 "
                             "(default: no limit)")

    c = add_parser(sub, "create", help="deploy an artifact to endpoints or a tag",
                   epilog="exit codes with --wait: 0 every target succeeded, 1 error, "
                          "3 completed_with_failures, 4 cancelled, 5 paused (failure "
                          "threshold or operator), 6 timed out")
    c.add_argument("--artifact", type=int, required=True, help="artifact id")
    target = c.add_mutually_exclusive_group(required=True)
    target.add_argument("--endpoints", help="comma-separated endpoint names")
    target.add_argument("--tag", help="every device with this tag")
    c.add_argument("--stages", default="100", help="cumulative percentages, e.g. 1,10,100")
    c.add_argument("--max-concurrent", type=int, default=10,
                   help="targets transferring or updating at once")
    c.add_argument("--failure-threshold", type=float, default=0.2,
                   help="fraction of released targets that may fail before it pauses")
    c.add_argument("--device-timeout", type=float, default=600,
                   help="seconds per device attempt")
    c.add_argument("--retries", type=int, default=2, help="attempts after the first, per device")
    c.add_argument("--delivery", choices=["auto", "pull", "push"], default="auto",
                   help="pull: the device fetches a URI; push: the server writes the package")
    c.add_argument("--verify", choices=["version", "result"], default="version",
                   help="what proves a firmware update: version (the new version in /3/0/3, "
                        "or in /5/0/7 with Update Result 1) or result (Update Result 1 after "
                        "Execute Update)")
    c.add_argument("--allow-downgrade", action="store_true",
                   help="also update devices that run a newer version")
    c.add_argument("--wait", action="store_true",
                   help="follow it live until it ends; exit 0 only when every target succeeded")
    waiting(c)
    c.add_argument("--poll", type=float, default=1.0,
                   help="with --db --wait: seconds between looks at the database")
    common(c)
    c.set_defaults(func=_create)

    s = add_parser(sub, "status", help="a deployment and its targets")
    s.add_argument("id", type=int)
    s.add_argument("--summary", action="store_true", help="counts only, no target list")
    s.add_argument("--wait", action="store_true",
                   help="follow it live until it ends (exit codes as for create --wait)")
    waiting(s)
    s.add_argument("--poll", type=float, default=1.0,
                   help="with --db --wait: seconds between looks at the database")
    common(s)
    s.set_defaults(func=_status)

    ls = add_parser(sub, "list", help="deployments, newest first")
    ls.add_argument("--state", choices=DEPLOYMENT_STATES)
    ls.add_argument("--limit", type=int, default=100, help="at most this many (remote)")
    common(ls)
    ls.set_defaults(func=_list)

    for name, text in (("pause", "start no new targets"), ("resume", "continue a paused one"),
                       ("cancel", "cancel targets not yet updating"),
                       ("retry", "run the failed targets again")):
        a = add_parser(sub, name, help=text)
        a.add_argument("id", type=int)
        common(a)
        a.set_defaults(func=_action(name))

    t = add_parser(sub, "tag", help="set the tags of a device (replaces its tags)")
    t.add_argument("endpoint")
    t.add_argument("tags", help="comma-separated tags ('' clears)")
    common(t)
    t.set_defaults(func=_tag)
