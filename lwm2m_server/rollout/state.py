"""The per-target state machine of a deployment, as pure functions (no I/O).

pending -> transferring -> transferred -> updating -> succeeded | failed | cancelled.
A retry sends a target back to pending; an operator's retry also sends a failed target back to
pending. Once the device was told to apply the update (updating), cancelling no longer stops
it: the target runs to its result. Deployment states: running, paused, cancelled, and the final
completed (every target succeeded) or completed_with_failures (some target failed).
Also the Update Result code tables of Object 5 and Object 9, and which failures are worth a retry.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "TargetState", "InvalidTransition", "check_transition", "is_terminal", "ACTIVE_STATES",
    "FW_RESULTS", "SW_RESULTS", "result_reason", "is_transient_result", "backoff_delay",
    "stage_sizes", "DEPLOYMENT_STATES", "FINAL_DEPLOYMENT_STATES", "final_state",
    "VERIFY_RULES",
]

DEPLOYMENT_STATES = ("running", "paused", "cancelled", "completed", "completed_with_failures")
FINAL_DEPLOYMENT_STATES = ("completed", "completed_with_failures")
# How a firmware target proves success: the new version in /3/0/3 (or /5/0/7 PkgVersion with
# Update Result 1), or Update Result 1 alone (devices that report an SDK version in /3/0/3).
VERIFY_RULES = ("version", "result")


class TargetState(str, Enum):
    PENDING = "pending"
    TRANSFERRING = "transferring"
    TRANSFERRED = "transferred"
    UPDATING = "updating"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class InvalidTransition(ValueError):
    """A state change the target state machine does not allow."""


_P, _TI, _TD, _U, _S, _F, _C = (TargetState.PENDING, TargetState.TRANSFERRING,
                                 TargetState.TRANSFERRED, TargetState.UPDATING,
                                 TargetState.SUCCEEDED, TargetState.FAILED, TargetState.CANCELLED)

# Besides these, a target may go straight to succeeded from any non-terminal state when the
# device turns out to run the new version already (resume after a restart).
_ALLOWED: dict[TargetState, frozenset[TargetState]] = {
    _P: frozenset({_TI, _TD, _U, _S, _F, _C}),
    _TI: frozenset({_TD, _U, _S, _F, _C, _P}),
    _TD: frozenset({_U, _S, _F, _C, _P}),
    _U: frozenset({_S, _F, _P}),
    _S: frozenset(),
    _F: frozenset({_P}),  # only an operator's retry (service.retry_deployment) does this
    _C: frozenset(),
}

ACTIVE_STATES = frozenset({_TI, _TD, _U})


def final_state(failed: int) -> str:
    """The final state of a deployment whose targets are all done, ``failed`` of them failed."""
    return "completed_with_failures" if failed else "completed"


def is_terminal(state: TargetState | str) -> bool:
    return TargetState(state) in (_S, _F, _C)


def check_transition(old: TargetState | str, new: TargetState | str) -> TargetState:
    """``new`` as a TargetState when ``old -> new`` is allowed, else InvalidTransition."""
    o, n = TargetState(old), TargetState(new)
    if o == n and not is_terminal(o):
        return n  # progress inside a state (for example the download percentage)
    if n not in _ALLOWED[o]:
        raise InvalidTransition(f"a target cannot go from {o.value} to {n.value}")
    return n


# Object 5 Update Result (/5/0/5), LwM2M 1.1 Appendix E.6.
FW_RESULTS = {
    0: "initial value", 1: "firmware updated successfully", 2: "not enough flash memory",
    3: "out of RAM during download", 4: "connection lost during download",
    5: "integrity check failure", 6: "unsupported package type", 7: "invalid URI",
    8: "firmware update failed", 9: "unsupported protocol",
}
# Object 9 Update Result (/9/x/9), OMA object 9 and docs/sota-format.md.
SW_RESULTS = {
    0: "initial value", 1: "downloading", 2: "software successfully installed",
    3: "successfully downloaded and verified", 50: "not enough storage for the new package",
    51: "out of memory during download", 52: "connection lost during downloading",
    53: "package integrity check failure", 54: "unsupported package type", 56: "invalid URI",
    57: "device defined update error", 58: "software installation failure",
    59: "uninstallation failure",
}

_FW_TRANSIENT = frozenset({3, 4})
_SW_TRANSIENT = frozenset({51, 52})


def result_reason(kind: str, result: int | None) -> str:
    """A readable text for an Update Result of Object 5 (kind "firmware") or 9 (else)."""
    table = FW_RESULTS if kind == "firmware" else SW_RESULTS
    if result is None:
        return "no update result"
    return f"update result {result}: {table.get(result, 'unknown code')}"


def is_transient_result(kind: str, result: int | None) -> bool:
    """True for results a retry may cure (connection lost, out of RAM); integrity, storage,
    package type and URI failures happen again the same way."""
    if result is None:
        return True
    return result in (_FW_TRANSIENT if kind == "firmware" else _SW_TRANSIENT)


def backoff_delay(attempt: int, base: float = 1.0, cap: float = 300.0) -> float:
    """Seconds to wait before attempt ``attempt`` (1-based retry count): base * 2**(n-1), capped."""
    if attempt <= 0:
        return 0.0
    return min(cap, base * (2 ** (attempt - 1)))


def stage_sizes(total: int, stages: list[int]) -> list[int]:
    """Cumulative target counts per stage for cumulative percentages ``stages``.

    A stage releases floor(total * pct / 100) targets in all, so it never releases more than
    asked; at least one (a 1 % stage of 20 devices still tests one device); the last stage
    covers every target. A stage whose count equals the previous one adds nobody and passes.
    """
    if total <= 0:
        return [0 for _ in stages] or [0]
    out: list[int] = []
    prev = 0
    for i, pct in enumerate(stages):
        n = total if i == len(stages) - 1 else max(1, total * pct // 100)
        n = min(max(n, prev), total)
        out.append(n)
        prev = n
    return out
