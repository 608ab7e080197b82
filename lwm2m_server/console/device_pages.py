"""The devices list and a device's page: registration, the model panel with "Run inference",
resources of every object instance with Read, Write (typed by the object model), Execute and
Observe, latest values with their time and source, numeric charts, recent events.

Every button calls the REST route of its operation (``lwm2m_server.api.devices``), so values
are checked the way the API checks them; results are noted in the ``ValueHistory`` with their
source.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ..api import deployments as api_deployments
from ..api import devices as api_devices
from ..api import events as api_events
from ..api.deps import EngineDep, ServerDep
from ..api.errors import BadRequest
from ..api.values import parse_path
from ..model import ObjectRegistry, Path, ResourceType
from .auth import CONSOLE_PREFIX, ConsoleError, checked_form
from .common import SignedIn, act, device_url, json_response, page_errors, render
from .fleet import MODEL_OBJECT, device_rows, display, model_panel, tags_by_endpoint
from .history import Seen, ValueHistory

__all__ = ["router", "MAX_DEVICE_ROWS", "RUN_PATH", "typed_value", "execute_vector_args",
           "resource_rows"]

router = APIRouter(include_in_schema=False)

# A page of a large fleet stays quick to render and to read; the filter narrows it down.
MAX_DEVICE_ROWS = 500
RUN_PATH = f"/{MODEL_OBJECT}/0/8"
MAX_VECTOR = 4096  # numbers in one inference input
# Input widgets per resource type: HTML input type and step.
_INPUTS: dict[ResourceType, tuple[str, str]] = {
    ResourceType.INTEGER: ("number", "1"), ResourceType.UNSIGNED_INTEGER: ("number", "1"),
    ResourceType.FLOAT: ("number", "any"), ResourceType.TIME: ("number", "1"),
    ResourceType.BOOLEAN: ("bool", ""), ResourceType.STRING: ("text", ""),
    ResourceType.OPAQUE: ("text", ""), ResourceType.OBJLNK: ("text", ""),
    ResourceType.CORELNK: ("text", ""),
}


def history_of(request: Request) -> ValueHistory:
    return request.app.state.console_history  # type: ignore[no-any-return]


# --- what the pages show ------------------------------------------------------------------

def _seen_json(seen: Seen) -> dict[str, Any]:
    return {"value": display(seen.value), "time": seen.time.isoformat(), "source": seen.source}


def resource_rows(instance: Path, registry: ObjectRegistry,
                  values: dict[str, Seen]) -> list[dict[str, Any]]:
    """The resources of one object instance as the object model defines them, with the
    latest value, time and source of each and which buttons apply."""
    odef = registry.get(instance.object_id) if instance.object_id is not None else None
    if odef is None:
        return []
    rows = []
    for rid, rdef in sorted(odef.resources.items()):
        path = f"{instance}/{rid}"
        seen = values.get(path)
        if seen is None and rdef.multiple:
            shown = {k: v for k, v in values.items() if k.startswith(path + "/")}
            seen = max(shown.values(), key=lambda s: s.time) if shown else None
            text = ", ".join(f"[{k.rsplit('/', 1)[1]}] {display(s.value)}"
                             for k, s in sorted(shown.items())) if shown else None
        else:
            text = display(seen.value) if seen is not None else None
        kind, step = _INPUTS.get(rdef.type, ("text", ""))
        rows.append({"path": path, "id": rid, "name": rdef.name, "type": rdef.type.value,
                     "units": rdef.units, "ops": str(rdef.operations) or "-",
                     "multiple": rdef.multiple, "readable": rdef.readable,
                     "writable": rdef.writable and not rdef.multiple,
                     "executable": rdef.executable, "input": kind, "step": step,
                     "numeric": kind == "number", "value": text,
                     "time": seen.time.isoformat() if seen else None,
                     "source": seen.source if seen else None})
    return rows


def typed_value(raw: str, path: Path, registry: ObjectRegistry) -> Any:
    """A form field's text as the JSON value the REST Write takes for ``path``'s type (the
    route then checks it against the object model); BadRequest when it is not one."""
    rdef = registry.resource_for(path)
    if rdef is None:
        raise BadRequest(f"{path}: no object definition knows this resource")
    text = raw.strip()
    try:
        if rdef.type in (ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER, ResourceType.TIME):
            return int(text)
        if rdef.type is ResourceType.FLOAT:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(text)
            return value
    except ValueError:
        raise BadRequest(f"{path}: {text!r} is not a valid {rdef.type.value} value") from None
    if rdef.type is ResourceType.BOOLEAN:
        if text not in ("true", "false"):
            raise BadRequest(f"{path}: {text!r} is not a boolean (true or false)")
        return text == "true"
    return raw


def execute_vector_args(text: str) -> str:
    """An inference input (numbers separated by commas or spaces) as Execute argument 0 of
    Run (LwM2M 1.1 §5.4.5: ``0='1.0,0.5'``); BadRequest for anything else."""
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts:
        raise BadRequest("give the input vector as numbers separated by commas")
    if len(parts) > MAX_VECTOR:
        raise BadRequest(f"at most {MAX_VECTOR} numbers per input vector")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise BadRequest(f"the input vector holds something that is not a number: {text[:60]!r}") from None
    if not all(math.isfinite(n) for n in numbers):
        raise BadRequest("the input vector must hold finite numbers")
    return "0='" + ",".join(parts) + "'"


# --- pages --------------------------------------------------------------------------------

@router.get(CONSOLE_PREFIX + "/devices")
def devices_page(request: Request, session: SignedIn, server: ServerDep,
                 q: Annotated[str | None, Query(max_length=200)] = None,
                 tag: Annotated[str | None, Query(max_length=100)] = None) -> HTMLResponse:
    devices = api_devices.device_list(server)
    tags = tags_by_endpoint(request.app.state.engine)
    rows = device_rows(devices, server.devices.latest, tags, text=q, tag=tag or None)
    all_tags = sorted({t for ts in tags.values() for t in ts})
    return render(request, "devices.html", session, rows=rows[:MAX_DEVICE_ROWS], matched=len(rows),
                  q=q or "", tag=tag or "", all_tags=all_tags, total=len(devices),
                  online=sum(1 for d in devices if d["online"]))


@router.get(CONSOLE_PREFIX + "/devices/{endpoint}")
async def device_page(request: Request, endpoint: str, session: SignedIn, server: ServerDep,
                      engine: EngineDep) -> HTMLResponse:
    with page_errors():
        device = api_devices.get_device(endpoint, server)
        events = await api_events.list_events(server, endpoint=endpoint, kind=None, limit=25)
        tags = await run_in_threadpool(api_deployments.get_tags, endpoint, engine)
        credentials = getattr(server, "credentials", None)
        has_credentials = (await credentials.has_credentials_async(endpoint)
                           if credentials is not None else False)
    latest = server.devices.latest(endpoint)
    seen = history_of(request).merge(endpoint, latest)
    registry = server.registry
    objects = []
    for text in device["objects"]:
        p = Path.parse(text)
        odef = registry.get(p.object_id) if p.object_id is not None else None
        objects.append({"path": text, "object_id": p.object_id, "instance_id": p.instance_id,
                        "name": odef.name if odef is not None else "unknown object",
                        "version": device["object_versions"].get(str(p.object_id), "1.0"),
                        "resources": resource_rows(p, registry, seen)
                        if p.instance_id is not None else []})
    observed = [{"paths": ", ".join(str(p) for p in key), "single": str(key[0]) if len(key) == 1 else None}
                for key in sorted(server.devices.observations(endpoint))]
    has_model = any(o["object_id"] == MODEL_OBJECT for o in objects)
    values = [{"path": k, "name": _name(registry, k), "units": _units(registry, k),
               **_seen_json(v)} for k, v in sorted(seen.items(), key=lambda kv: Path.parse(kv[0]))]
    return render(request, "device.html", session, device=device, objects=objects,
                  values=values, seen={k: _seen_json(v) for k, v in seen.items()},
                  model=model_panel(latest), has_model=has_model, events=events,
                  observed=observed, tags=tags["tags"], endpoint_url=device_url(endpoint),
                  run_path=RUN_PATH, has_credentials=has_credentials)


def _name(registry: ObjectRegistry, key: str) -> str:
    p = Path.parse(key)
    rdef = registry.resource_for(p)
    if rdef is None:
        return ""
    return f"{rdef.name} [{p.ids[-1]}]" if p.is_resource_instance else rdef.name


def _units(registry: ObjectRegistry, key: str) -> str:
    rdef = registry.resource_for(Path.parse(key))
    return (rdef.units or "") if rdef is not None else ""


@router.get(CONSOLE_PREFIX + "/devices/{endpoint}/values.json")
def device_values(request: Request, endpoint: str, session: SignedIn,
                  server: ServerDep) -> JSONResponse:
    """Latest values with time and source, and the numeric series, for the page's script."""
    with page_errors():
        api_devices.get_device(endpoint, server)
    seen = history_of(request).merge(endpoint, server.devices.latest(endpoint))
    return json_response({"endpoint": endpoint,
                          "values": {k: {**_seen_json(v), "name": _name(server.registry, k),
                                         "units": _units(server.registry, k)}
                                     for k, v in seen.items()},
                          "series": history_of(request).series(endpoint)})


# --- buttons ------------------------------------------------------------------------------

def _count(result: dict[str, Any]) -> str:
    n = len(result.get("values", {}))
    return f"{n} value{'s' if n != 1 else ''}"


def _recorded(request: Request, endpoint: str, source: str,
              route: Callable[[], Awaitable[dict[str, Any]]]) -> Callable[[], Awaitable[dict[str, Any]]]:
    """``route`` whose answer's values are noted in the history as coming from ``source``."""
    async def run() -> dict[str, Any]:
        result = await route()
        if result.get("values"):
            history_of(request).record(endpoint, result["values"], source)
        return result
    return run


async def _write(request: Request, endpoint: str, form: Any, server: Any) -> dict[str, Any]:
    path = parse_path(str(form.get("path") or ""), min_level=3)
    value = typed_value(str(form.get("value") or ""), path, server.registry)
    result = await api_devices.write(endpoint, str(path), api_devices.WriteBody(values={str(path): value}, replace=None),
                                     server, timeout=None)
    history_of(request).record(endpoint, {str(path): value}, "write")
    return {**result, "value": value}


async def _execute(endpoint: str, form: Any, server: Any) -> dict[str, Any]:
    args = str(form.get("args") or "").strip() or None
    return await api_devices.execute(endpoint, str(form.get("path") or ""), server,
                                     api_devices.ExecuteBody(args=args), timeout=None)


async def _run_inference(request: Request, endpoint: str, form: Any, server: Any) -> dict[str, Any]:
    """Execute Run (/33100/0/8) with the input vector, then Read the model object: the answer."""
    args = execute_vector_args(str(form.get("vector") or ""))
    await api_devices.execute(endpoint, RUN_PATH, server, api_devices.ExecuteBody(args=args),
                              timeout=None)
    result = await api_devices.read(endpoint, f"/{MODEL_OBJECT}/0", server, timeout=None)
    history_of(request).record(endpoint, result.get("values", {}), "read")
    return result


def _inference_text(result: dict[str, Any]) -> str:
    v = result.get("values", {})
    base = f"/{MODEL_OBJECT}/0/"
    parts = [f"output {v.get(base + '6')}"]
    if base + "7" in v:
        parts.append(f"score {round(float(v[base + '7']), 4)}")
    if base + "5" in v:
        parts.append(f"{v[base + '5']} µs")
    if base + "4" in v:
        parts.append(f"inference #{v[base + '4']}")
    error = v.get(base + "11")
    return "Inference: " + ", ".join(parts) + (f" (last error: {error})" if error else "")


@router.post(CONSOLE_PREFIX + "/devices/{endpoint}/{operation}")
async def device_operation(request: Request, endpoint: str, operation: str,
                           server: ServerDep) -> Response:
    """The device buttons: read, observe, cancel-observe, write, execute, run-inference."""
    session, form = await checked_form(request, "write")
    path = str(form.get("path") or "")
    ops: dict[str, tuple[Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], str]]] = {
        "read": (_recorded(request, endpoint, "read",
                           lambda: api_devices.read(endpoint, path, server, timeout=None)),
                 lambda r: f"Read {r['path']}: {_count(r)}"),
        "observe": (_recorded(request, endpoint, "read",
                              lambda: api_devices.observe(endpoint, path, server, timeout=None)),
                    lambda r: f"Observing {r['path']} (current: {_count(r)}); notifications "
                              "update the values live"),
        "cancel-observe": (lambda: api_devices.cancel_observe(endpoint, path, server, timeout=None),
                           lambda r: f"Stopped observing {r['path']}"),
        "write": (lambda: _write(request, endpoint, form, server),
                  lambda r: f"Wrote {r['path']} = {display(r['value'])}"),
        "execute": (lambda: _execute(endpoint, form, server),
                    lambda r: f"Executed {r['path']}"),
        "run-inference": (lambda: _run_inference(request, endpoint, form, server), _inference_text),
    }
    if operation not in ops:
        raise ConsoleError(f"unknown device operation {operation!r} ({', '.join(ops)})", 404)
    op, done = ops[operation]
    return await act(request, session, device_url(endpoint), op, done)

