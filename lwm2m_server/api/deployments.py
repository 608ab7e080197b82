"""``/api/v1/deployments`` (create, list, look at, pause, resume, cancel, retry), ``/api/v1/webhooks``
(signed rollout events) and ``/api/v1/devices/{endpoint}/tags`` (targets by tag).

Creating and changing deployments needs the ``deploy`` scope; reading them ``read``. The rollout
layer's errors become HTTP answers in ``_rollout_error``, the one place for that family.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from ..rollout import service as rollout
from ..rollout.errors import RolloutError
from ..rollout.webhooks import (WEBHOOK_KINDS, create_webhook, delete_webhook, list_webhooks,
                                public_url)
from .deps import DbInt, EngineDep, SettingsDep, event_bus, require_scope, wake_rollout
from .artifacts import status_error

__all__ = ["router"]

router = APIRouter(tags=["deployments"])
_deploy = [Depends(require_scope("deploy"))]
_read = [Depends(require_scope("read"))]


@contextmanager
def _rollout_error() -> Iterator[None]:
    try:
        yield
    except RolloutError as e:
        kind = {404: "not_found", 409: "conflict", 422: "invalid_deployment"}.get(
            e.http_status, "invalid_request")
        raise status_error(e.http_status, e.message, kind) from None


class DeploymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt setting is an error, not a default

    artifact_id: DbInt
    endpoints: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, max_length=100_000)
    tag: str | None = Field(None, min_length=1, max_length=100)
    stages: list[int] = Field(default_factory=lambda: [100], min_length=1, max_length=20,
                              description="cumulative percentages, e.g. [1, 10, 100]")
    max_concurrent: int = Field(10, ge=1, le=10_000)
    failure_threshold: float = Field(0.2, ge=0, le=1,
                                     description="fraction of released targets that may fail "
                                                 "before the deployment pauses")
    timeout: float = Field(600, gt=0, le=7 * 86400, description="seconds per device attempt")
    retries: int = Field(2, ge=0, le=20)
    delivery: Literal["auto", "pull", "push"] = "auto"
    verify: Literal["version", "result"] = Field(
        "version", description="what proves a firmware update: version (the new version in "
                               "/3/0/3, or in /5/0/7 with Update Result 1) or result (Update "
                               "Result 1 after Execute Update)")
    allow_downgrade: bool = Field(False, description="update devices that run a newer version")


@router.post("/deployments", status_code=201, dependencies=_deploy,
             summary="Start a deployment of an artifact to endpoints or a tag")
def post_deployment(body: DeploymentCreate, engine: EngineDep, request: Request) -> dict[str, Any]:
    with _rollout_error():
        dep = rollout.create_deployment(engine, rollout.DeploymentSpec(**body.model_dump()),
                                        events=event_bus(request))
    wake_rollout(request)
    return {"id": dep.id, "state": dep.state}


@router.get("/deployments", dependencies=_read, summary="Deployments, newest first")
def get_deployments(engine: EngineDep,
                    state: Literal["running", "paused", "cancelled", "completed",
                                   "completed_with_failures"] | None = None,
                    limit: int = 100,
                    offset: DbInt = 0) -> list[dict[str, Any]]:
    return rollout.list_deployments(engine, state=state, limit=max(1, min(limit, 1000)),
                                    offset=max(0, offset))


@router.get("/deployments/{deployment_id}", dependencies=_read,
            summary="A deployment: state, counts, and every target's state, progress and result")
def get_deployment(deployment_id: DbInt, engine: EngineDep) -> dict[str, Any]:
    with _rollout_error():
        return rollout.deployment_view(engine, deployment_id)


def _change(action: str, deployment_id: DbInt, engine: Any, request: Request) -> dict[str, Any]:
    ops: dict[str, Callable[..., Any]] = {
        "pause": rollout.pause_deployment, "resume": rollout.resume_deployment,
        "cancel": rollout.cancel_deployment, "retry": rollout.retry_deployment}
    with _rollout_error():
        ops[action](engine, deployment_id, events=event_bus(request))
        view = rollout.deployment_view(engine, deployment_id, with_targets=False)
    wake_rollout(request)
    return view


@router.post("/deployments/{deployment_id}/pause", dependencies=_deploy,
             summary="Start no new targets; those in flight finish their attempt")
def pause(deployment_id: DbInt, engine: EngineDep, request: Request) -> dict[str, Any]:
    return _change("pause", deployment_id, engine, request)


@router.post("/deployments/{deployment_id}/resume", dependencies=_deploy,
             summary="Continue a paused deployment (earlier failures no longer count)")
def resume(deployment_id: DbInt, engine: EngineDep, request: Request) -> dict[str, Any]:
    return _change("resume", deployment_id, engine, request)


@router.post("/deployments/{deployment_id}/cancel", dependencies=_deploy,
             summary="Cancel: targets not yet updating are cancelled")
def cancel(deployment_id: DbInt, engine: EngineDep, request: Request) -> dict[str, Any]:
    return _change("cancel", deployment_id, engine, request)


@router.post("/deployments/{deployment_id}/retry", dependencies=_deploy,
             summary="Run the failed targets again (the others stay as they are)")
def retry(deployment_id: int, engine: EngineDep, request: Request) -> dict[str, Any]:
    return _change("retry", deployment_id, engine, request)


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000)
    secret: str | None = Field(None, min_length=16, max_length=200)
    kinds: list[str] = Field(default_factory=lambda: list(WEBHOOK_KINDS))


def _hook(row: Any) -> dict[str, Any]:
    return {"id": row.id, "url": public_url(row.url), "kinds": row.kinds, "active": row.active}


@router.post("/webhooks", status_code=201, dependencies=_deploy, tags=["webhooks"],
             summary="Register a webhook; the response shows its HMAC secret once")
def post_webhook(body: WebhookCreate, engine: EngineDep, settings: SettingsDep) -> dict[str, Any]:
    with _rollout_error():
        row, secret = create_webhook(engine, body.url, body.secret, body.kinds,
                                     allow_private=settings.webhook_allow_private)
    return {**_hook(row), "secret": secret, "signature_header": "X-LwM2M-Signature"}


@router.get("/webhooks", dependencies=_deploy, tags=["webhooks"], summary="Webhooks (no secrets)")
def get_webhooks(engine: EngineDep) -> list[dict[str, Any]]:
    return [_hook(r) for r in list_webhooks(engine)]


@router.delete("/webhooks/{webhook_id}", dependencies=_deploy, tags=["webhooks"])
def remove_webhook(webhook_id: DbInt, engine: EngineDep) -> dict[str, Any]:
    with _rollout_error():
        delete_webhook(engine, webhook_id)
    return {"id": webhook_id, "deleted": True}


class Tags(BaseModel):
    tags: list[str] = Field(max_length=100)


@router.put("/devices/{endpoint}/tags", dependencies=[Depends(require_scope("write"))],
            tags=["devices"], summary="Replace a device's tags (deployments may target a tag)")
def put_tags(endpoint: str, body: Tags, engine: EngineDep) -> dict[str, Any]:
    with _rollout_error():
        return {"endpoint": endpoint, "tags": rollout.set_tags(engine, endpoint, body.tags)}


@router.get("/devices/{endpoint}/tags", dependencies=_read, tags=["devices"])
def get_tags(endpoint: str, engine: EngineDep) -> dict[str, Any]:
    return {"endpoint": endpoint, "tags": rollout.get_tags(engine, endpoint)}
