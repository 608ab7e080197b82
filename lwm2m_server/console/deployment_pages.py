"""Deployments in the console: the list, the "new deployment" form (with a live count of the
devices it targets), the live page of one deployment, and its buttons (pause, resume, cancel,
retry failed targets).

Creating goes through the REST route's own body model and function (``DeploymentCreate``,
``post_deployment``); the buttons call the rollout service the REST routes call.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from ..api import artifacts as api_artifacts
from ..api import deployments as api_deployments
from ..api.deps import EngineDep, ServerDep
from ..api.errors import ApiError
from ..rollout import service as rollout
from ..rollout.errors import RolloutError
from .auth import CONSOLE_PREFIX, ConsoleError, checked_form
from .common import SignedIn, act, error_status, json_response, page_errors, render
from .fleet import FINAL_STATES, deployment_progress, final_summary, tags_by_endpoint

__all__ = ["router", "VERIFY_SUPPORTED", "DOWNGRADE_SUPPORTED", "STATE_FILTERS", "form_to_body", "count_targets"]

router = APIRouter(include_in_schema=False)

# The rollout service may know a per-deployment verification rule (``verify``: "version" or
# "result"); the form offers it only then, so the console works with and without it.
def _supported(name: str) -> bool:
    return name in {f.name for f in dataclasses.fields(rollout.DeploymentSpec)} and \
        name in api_deployments.DeploymentCreate.model_fields


VERIFY_SUPPORTED = _supported("verify")
DOWNGRADE_SUPPORTED = _supported("allow_downgrade")  # the same, for updates to older versions
STATE_FILTERS = ("running", "paused", "completed", "completed_with_failures", "cancelled")
MAX_LISTED_ENDPOINTS = 10_000


def _split(text: str) -> list[str]:
    return [e for e in text.replace(",", " ").split() if e]


def form_to_body(form: Any) -> dict[str, Any]:
    """The REST body of a deployment from the form's fields (texts); ConsoleError(400) for a
    field that is not a number where one is needed. Ranges are the REST model's to check."""
    def number(name: str, kind: type, scale: float = 1.0) -> Any:
        text = str(form.get(name) or "").strip()
        try:
            return kind(float(text) / scale) if kind is float else kind(text)
        except ValueError:
            raise ConsoleError(f"{name.replace('_', ' ')}: {text!r} is not a number", 400) from None

    body: dict[str, Any] = {"artifact_id": number("artifact_id", int)}
    if str(form.get("target_mode") or "tag") == "tag":
        body["tag"] = str(form.get("tag") or "").strip() or None
        if body["tag"] is None:
            raise ConsoleError("choose the tag whose devices get the update", 400)
    else:
        body["endpoints"] = _split(str(form.get("endpoints") or ""))
    stages = str(form.get("stages") or "100")
    try:
        body["stages"] = [int(s) for s in stages.replace("%", "").replace(",", " ").split()]
    except ValueError:
        raise ConsoleError(f"stages: {stages!r} must be whole percentages, e.g. 10, 50, 100", 400) from None
    body["max_concurrent"] = number("max_concurrent", int)
    body["failure_threshold"] = number("failure_threshold", float, 100.0)  # the form asks for %
    body["timeout"] = number("timeout", float)
    body["retries"] = number("retries", int)
    body["delivery"] = str(form.get("delivery") or "auto")
    if VERIFY_SUPPORTED and form.get("verify"):
        body["verify"] = str(form.get("verify"))
    if DOWNGRADE_SUPPORTED:
        body["allow_downgrade"] = form.get("allow_downgrade") == "on"
    return body


def count_targets(engine: Any, server: Any, tag: str | None, endpoints: list[str]) -> dict[str, Any]:
    """How many devices a deployment would target: by tag, or the endpoints given; how many of
    them are registered and online, and a few names the server does not know."""
    if tag:
        with Session(engine) as session:
            names = rollout.endpoints_with_tag(session, tag)
    else:
        names = list(dict.fromkeys(endpoints))[:MAX_LISTED_ENDPOINTS]
    regs = [server.registrations.get(n) for n in names]
    unknown = [n for n, r in zip(names, regs) if r is None]
    return {"count": len(names), "registered": len(names) - len(unknown),
            "online": sum(1 for r in regs if r is not None and r.online), "unknown": unknown[:5]}


def _deployable(engine: Any) -> list[dict[str, Any]]:
    return [a for a in api_artifacts.get_artifacts(engine, kind=None, limit=200)
            if a["kind"] in rollout.DEPLOYABLE_KINDS]


# --- pages --------------------------------------------------------------------------------

@router.get(CONSOLE_PREFIX + "/deployments")
def deployments_page(request: Request, session: SignedIn, engine: EngineDep,
                     state: Annotated[str | None, Query(max_length=30)] = None) -> HTMLResponse:
    with page_errors():
        wanted = state if state in STATE_FILTERS else None
        deployments = api_deployments.get_deployments(engine, state=wanted)  # type: ignore[arg-type]
    for d in deployments:
        d["progress"] = deployment_progress(d)
    return render(request, "deployments.html", session, deployments=deployments,
                  state=state or "", states=STATE_FILTERS)


def _new_page(request: Request, session: Any, engine: Any, values: dict[str, Any],
              error: str | None = None, status: int = 200) -> HTMLResponse:
    tags = sorted({t for ts in tags_by_endpoint(engine).values() for t in ts})
    return render(request, "deployment_new.html", session, artifacts=_deployable(engine),
                  tags=tags, v=values, error=error, verify_supported=VERIFY_SUPPORTED,
                  downgrade_supported=DOWNGRADE_SUPPORTED,
                  status=status)


_DEFAULTS = {"artifact_id": "", "target_mode": "tag", "tag": "", "endpoints": "",
             "stages": "10, 50, 100", "max_concurrent": "10", "failure_threshold": "20",
             "timeout": "600", "retries": "2", "delivery": "auto", "verify": "version",
             "allow_downgrade": ""}


@router.get(CONSOLE_PREFIX + "/deployments/new")
def new_deployment_page(request: Request, session: SignedIn, engine: EngineDep,
                        artifact: Annotated[int | None, Query()] = None) -> HTMLResponse:
    values = dict(_DEFAULTS, artifact_id=str(artifact or ""))
    return _new_page(request, session, engine, values)


@router.get(CONSOLE_PREFIX + "/deployments/targets")
def target_count(session: SignedIn, engine: EngineDep, server: ServerDep,
                 tag: Annotated[str | None, Query(max_length=100)] = None,
                 endpoints: Annotated[str | None, Query(max_length=200_000)] = None) -> JSONResponse:
    """The live count of the form: devices the targets name, registered and online."""
    return json_response(count_targets(engine, server, tag, _split(endpoints or "")))


@router.post(CONSOLE_PREFIX + "/deployments/new")
async def create_deployment(request: Request, engine: EngineDep) -> Response:
    session, form = await checked_form(request, "deploy")
    values = {k: str(form.get(k) or "") for k in _DEFAULTS}
    try:
        body = api_deployments.DeploymentCreate.model_validate(form_to_body(form))
        created = await run_in_threadpool(api_deployments.post_deployment, body, engine, request)
    except ConsoleError as e:
        return _new_page(request, session, engine, values, e.message, e.status)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}"
                             for err in e.errors())
        return _new_page(request, session, engine, values, problems, 422)
    except (ApiError, RolloutError) as e:
        status, message = error_status(e)
        return _new_page(request, session, engine, values, message, status)
    return await act(request, session, f"{CONSOLE_PREFIX}/deployments/{created['id']}",
                     lambda: created, lambda c: f"deployment {c['id']} created: {c['state']}")


@router.get(CONSOLE_PREFIX + "/deployments/{deployment_id}")
def deployment_page(request: Request, deployment_id: int, session: SignedIn,
                    engine: EngineDep) -> HTMLResponse:
    with page_errors():
        view = api_deployments.get_deployment(deployment_id, engine)
    progress = deployment_progress(view)
    return render(request, "deployment.html", session, dep=view, progress=progress,
                  final=final_summary(view["state"], progress), final_states=FINAL_STATES)


_ACTIONS = ("pause", "resume", "cancel", "retry")


@router.post(CONSOLE_PREFIX + "/deployments/{deployment_id}/{action}")
async def deployment_action(request: Request, deployment_id: int, action: str,
                            engine: EngineDep) -> Response:
    session, _ = await checked_form(request, "deploy")
    if action not in _ACTIONS:
        raise ConsoleError(f"unknown deployment action {action!r} ({', '.join(_ACTIONS)})", 404)

    def done(v: dict[str, Any]) -> str:
        if action == "retry":
            return f"deployment {deployment_id} is {v['state']}: failed targets retry"
        return f"deployment {deployment_id} is {v['state']}"
    change = api_deployments._change  # noqa: SLF001 - the REST routes' own function
    return await act(request, session, f"{CONSOLE_PREFIX}/deployments/{deployment_id}",
                     lambda: run_in_threadpool(change, action, deployment_id, engine, request),
                     done)
