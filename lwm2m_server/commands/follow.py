"""Following a deployment live for ``deploy create --wait`` and ``deploy status --wait``.

The server's event stream (``deployment`` and ``deployment_target`` events) drives the display;
a look at the deployment itself every few seconds covers events the stream dropped. On a
terminal one status line is redrawn (counts per state, stage) and each failure is printed with
its reason; otherwise (a CI log) one plain line per change. The exit code tells a pipeline how
it ended (``EXIT_CODES``).
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from .remote import Client, RemoteError

__all__ = ["follow", "exit_code", "EXIT_CODES", "EXIT_TIMEOUT", "FINAL_STATES"]

# How a followed deployment ended -> exit code; a pipeline can tell them apart.
EXIT_CODES = {"completed": 0, "completed_with_failures": 3, "cancelled": 4, "paused": 5}
EXIT_TIMEOUT = 6
FINAL_STATES = frozenset(EXIT_CODES)
_RECHECK_SECONDS = 3.0
_ORDER = ("pending", "transferring", "transferred", "updating", "succeeded", "failed", "cancelled")


def exit_code(view: dict[str, Any]) -> int:
    """The exit code for a deployment's state (0 only when every target succeeded)."""
    return EXIT_CODES.get(str(view["state"]), EXIT_TIMEOUT)


class _Display:
    """Progress on a terminal (one redrawn line) or as plain lines."""

    def __init__(self, out: TextIO, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self.drawn = False
        self.shown = ""

    def _clear(self) -> None:
        if self.drawn:
            self.out.write("\r\x1b[K")
            self.drawn = False

    def line(self, text: str) -> None:
        self._clear()
        self.out.write(text + "\n")
        self.out.flush()

    def status(self, text: str) -> None:
        if self.tty and not (self.drawn and text == self.shown):
            self.shown = text
            self._clear()
            self.out.write(text)
            self.out.flush()
            self.drawn = True

    def done(self) -> None:
        self._clear()
        self.out.flush()


def _summary(dep_id: int, state: str, stage: int, stages: int, targets: dict[str, str]) -> str:
    counts = {s: 0 for s in _ORDER}
    for s in targets.values():
        counts[s] = counts.get(s, 0) + 1
    shown = " ".join(f"{s} {n}" for s, n in counts.items() if n)
    return f"deployment {dep_id} {state}, stage {stage + 1}/{stages}: {shown}"


def _reader(client: Client, events: queue.Queue[Any], opened: threading.Event,
            stop: threading.Event) -> None:
    try:
        for ev in client.events("deployment,deployment_target", on_open=opened.set):
            if stop.is_set():
                return
            events.put(ev)
    except RemoteError as e:
        events.put(e)
    except Exception as e:  # noqa: BLE001 - the stream broke: tell the main thread, which polls on
        events.put(RemoteError(f"event stream: {e}"))
    finally:
        opened.set()


def follow(client: Client, start: Callable[[], int], *, timeout: float | None,
           out: TextIO | None = None, tty: bool | None = None) -> tuple[dict[str, Any], int]:
    """Subscribe to the event stream, call ``start()`` (it creates the deployment or names
    one: its id), then show progress until the deployment is final, cancelled or paused, or
    ``timeout`` seconds pass; returns its last view (with targets) and the exit code."""
    out = out or sys.stdout
    display = _Display(out, out.isatty() if tty is None else tty)
    events: queue.Queue[Any] = queue.Queue()
    opened, stop = threading.Event(), threading.Event()
    reader = threading.Thread(target=_reader, args=(client, events, opened, stop),
                              name="lwm2m-events", daemon=True)
    reader.start()
    # A subscription that cannot open (no read scope, wrong URL) fails before anything starts.
    opened.wait(client.timeout)
    if not events.empty() and isinstance(events.queue[0], RemoteError):
        raise events.get()
    dep_id = start()
    began = time.monotonic()
    try:
        view = client.get(f"/deployments/{dep_id}")
        targets: dict[str, str] = {}

        def note(endpoint: str, new: str, reason: str | None) -> None:
            """A target's new state: a line for a failure (with its reason) and, off a
            terminal, for every change."""
            if targets.get(endpoint) == new or targets.get(endpoint) in ("succeeded", "cancelled"):
                return  # an event older than the look that found it done
            targets[endpoint] = new
            if new == "failed":
                display.line(f"  {endpoint} failed: {reason or 'no reason given'}")
            elif not display.tty and new != "pending":
                display.line(f"  {endpoint} {new}")

        stage, state, stages = int(view["current_stage"]), str(view["state"]), len(view["stages"])
        display.line(f"following deployment {dep_id}: {view['total']} targets, "
                     f"stages {view['stages']}")
        for t in view["targets"]:
            note(t["endpoint"], t["state"], t["reason"])
        last_check = time.monotonic()
        streaming = True
        while state not in FINAL_STATES:
            if timeout is not None and time.monotonic() - began > timeout:
                display.done()
                view = client.get(f"/deployments/{dep_id}")
                return view, EXIT_TIMEOUT if view["state"] not in FINAL_STATES else exit_code(view)
            display.status(_summary(dep_id, state, stage, stages, targets))
            try:
                ev = events.get(timeout=0.5) if streaming else None
                if ev is None:
                    time.sleep(0.5)
            except queue.Empty:
                ev = None
            if isinstance(ev, RemoteError):
                streaming = False  # go on by looking at the deployment
                display.line(f"event stream lost ({ev.message}); polling instead")
                ev = None
            if ev is not None and ev.get("data", {}).get("deployment_id") == dep_id:
                data = ev["data"]
                if ev["kind"] == "deployment_target" and ev.get("endpoint"):
                    note(ev["endpoint"], str(data.get("state")), data.get("reason"))
                elif ev["kind"] == "deployment":
                    new_stage = int(data.get("current_stage") or 0)
                    if data.get("state") != state or new_stage != stage:
                        state, stage = str(data.get("state")), new_stage
                        reason = f": {data['reason']}" if data.get("reason") else ""
                        display.line(f"deployment {dep_id} {state}, stage {stage + 1}/{stages}"
                                     f"{reason}")
            if time.monotonic() - last_check > _RECHECK_SECONDS or state in FINAL_STATES:
                last_check = time.monotonic()
                view = client.get(f"/deployments/{dep_id}")
                for t in view["targets"]:
                    note(t["endpoint"], t["state"], t["reason"])
                state, stage = str(view["state"]), int(view["current_stage"])
        display.done()
        return view, exit_code(view)
    finally:
        stop.set()
