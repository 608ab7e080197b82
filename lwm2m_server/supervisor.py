"""The supervisor of ``lwm2m-server run --workers N``: N worker processes of the same server.

Each worker is a whole ``run`` (its own event loop, CoAP endpoint, HTTP server and database
pool); they share the ports through SO_REUSEPORT and the fleet through PostgreSQL
(docs/scale.md). The supervisor only starts them, forwards SIGINT/SIGTERM, waits for them, and
restarts a worker that exits on its own, after a back-off that doubles while the worker keeps
dying before it serves. When one keeps dying at start (a busy port, an unreachable database)
it stops the others and exits 1.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

from .config import Settings

__all__ = ["supervise", "SupervisorPolicy"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SupervisorPolicy:
    """When to restart and when to give up."""

    max_start_failures: int = 5  # exits before serving, in a row for one worker: give up
    first_backoff: float = 0.5  # seconds before the first restart; doubles per failure at start
    max_backoff: float = 30.0
    stop_timeout: float = 30.0  # after SIGTERM, seconds before SIGKILL


@dataclass
class _Slot:
    index: int
    proc: Any = None  # multiprocessing.Process
    ready: Any = None  # multiprocessing.Event: set once the worker serves
    started: float = 0.0
    start_failures: int = 0
    restart_at: float | None = None


def _worker_main(settings: Settings, index: int, ready: Any) -> None:
    """A worker: the whole server of one process, its log records tagged with ``index``;
    sets ``ready`` once it serves."""
    _die_with_parent()
    from .logs import tag_worker
    from .runner import run

    tag_worker(index)
    sys.exit(run(settings, on_ready=ready.set))


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker when the supervisor dies (kill -9), so no orphan keeps the port."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the supervisor died before prctl took effect
        sys.exit(0)


class _Supervisor:
    def __init__(self, settings: Settings, policy: SupervisorPolicy) -> None:
        self.settings = settings.model_copy(update={"workers": 1})
        self.policy = policy
        self.slots = [_Slot(i + 1) for i in range(settings.workers)]
        self.stopping: int | None = None  # the signal that asked us to stop
        self.exit_code = 0
        self._mp = multiprocessing.get_context("spawn")

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.stopping is None:
            self.stopping = signum

    def _start(self, slot: _Slot) -> None:
        slot.ready = self._mp.Event()
        slot.proc = self._mp.Process(target=_worker_main,
                                     args=(self.settings, slot.index, slot.ready),
                                     name=f"lwm2m-worker-{slot.index}")
        slot.proc.start()
        slot.started = time.monotonic()
        slot.restart_at = None
        log.info("worker %d started (pid %d)", slot.index, slot.proc.pid)

    def _reap(self, slot: _Slot) -> None:
        """A worker exited on its own: schedule its restart, or give up."""
        ran = time.monotonic() - slot.started
        code = slot.proc.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"code {code}"
        slot.proc.close()
        slot.proc = None
        served = slot.ready.is_set()
        slot.start_failures = 0 if served else slot.start_failures + 1
        if slot.start_failures >= self.policy.max_start_failures:
            log.error("worker %d exited with %s %d times in a row before it served; "
                      "stopping the other workers", slot.index, how, slot.start_failures)
            self.exit_code = 1
            self.stopping = -1
            return
        delay = min(self.policy.max_backoff,
                    self.policy.first_backoff * 2 ** max(0, slot.start_failures - 1))
        log.warning("worker %d exited unexpectedly with %s after %.1f s (%s); restarting it "
                    "in %.1f s", slot.index, how, ran, "serving" if served else "before serving",
                    delay)
        slot.restart_at = time.monotonic() + delay

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            log.info("starting %d workers", len(self.slots))
            for slot in self.slots:
                self._start(slot)
            while self.stopping is None:
                live = [s.proc.sentinel for s in self.slots if s.proc is not None]
                if live:
                    multiprocessing.connection.wait(live, timeout=0.2)
                else:
                    time.sleep(0.2)
                if self.stopping is not None:
                    break
                now = time.monotonic()
                for slot in self.slots:
                    if slot.proc is not None and not slot.proc.is_alive():
                        slot.proc.join()
                        self._reap(slot)
                    elif slot.proc is None and slot.restart_at is not None and now >= slot.restart_at:
                        self._start(slot)
            self._stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.exit_code

    def _stop_all(self) -> None:
        """SIGTERM every live worker, SIGKILL those still running after the timeout."""
        if self.stopping is not None and self.stopping > 0:
            log.info("stopping %d workers (%s)", sum(s.proc is not None for s in self.slots),
                     signal.Signals(self.stopping).name)
        live = [s for s in self.slots if s.proc is not None]
        for slot in live:
            with contextlib.suppress(OSError):
                slot.proc.terminate()  # SIGTERM: the worker stops gracefully
        deadline = time.monotonic() + self.policy.stop_timeout
        for slot in live:
            slot.proc.join(max(0.0, deadline - time.monotonic()))
            if slot.proc.is_alive():
                log.warning("worker %d did not stop in %.0f s; killing it", slot.index,
                            self.policy.stop_timeout)
                slot.proc.kill()
                slot.proc.join()
            elif slot.proc.exitcode not in (0, None):
                log.warning("worker %d stopped with code %s", slot.index, slot.proc.exitcode)
            slot.proc.close()
            slot.proc = None


def supervise(settings: Settings, policy: SupervisorPolicy | None = None) -> int:
    """Run ``settings.workers`` worker processes until SIGINT/SIGTERM; the exit code (0, or 1
    when a worker keeps dying at start)."""
    from .logs import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    return _Supervisor(settings, policy or SupervisorPolicy()).run()
