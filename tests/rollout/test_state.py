"""The pure per-target state machine, result tables, backoff and stage arithmetic."""

from __future__ import annotations

import pytest

from lwm2m_server.rollout.drivers import TargetFailed, choose_method, versions_equal
from lwm2m_server.rollout.state import (InvalidTransition, TargetState, backoff_delay,
                                        check_transition, is_transient_result, result_reason,
                                        final_state, stage_sizes)

S = TargetState


def test_happy_path_transitions_are_allowed_in_order() -> None:
    chain = [S.PENDING, S.TRANSFERRING, S.TRANSFERRED, S.UPDATING, S.SUCCEEDED]
    for a, b in zip(chain, chain[1:]):
        assert check_transition(a, b) == b


@pytest.mark.parametrize("terminal", [S.SUCCEEDED, S.FAILED, S.CANCELLED])
def test_terminal_states_never_change_except_an_operators_retry_of_a_failure(
        terminal: TargetState) -> None:
    for s in TargetState:
        if terminal == S.FAILED and s == S.PENDING:
            assert check_transition(terminal, s) == S.PENDING
            continue
        with pytest.raises(InvalidTransition):
            check_transition(terminal, s)


def test_an_updating_target_cannot_be_cancelled_but_may_retry() -> None:
    with pytest.raises(InvalidTransition):
        check_transition(S.UPDATING, S.CANCELLED)
    assert check_transition(S.UPDATING, S.PENDING) == S.PENDING
    with pytest.raises(InvalidTransition):
        check_transition(S.UPDATING, S.TRANSFERRING)


def test_results_have_readable_reasons_and_only_link_failures_are_transient() -> None:
    assert result_reason("firmware", 5) == "update result 5: integrity check failure"
    assert "not enough storage" in result_reason("sota", 50)
    assert is_transient_result("firmware", 4) and not is_transient_result("firmware", 5)
    assert is_transient_result("sota", 52) and not is_transient_result("sota", 53)


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(n, 2.0, 10.0) for n in range(5)] == [0.0, 2.0, 4.0, 8.0, 10.0]


def test_stage_sizes_are_cumulative_and_cover_everyone() -> None:
    assert stage_sizes(1000, [1, 10, 100]) == [10, 100, 1000]
    assert stage_sizes(20, [5, 50, 100]) == [1, 10, 20]
    assert stage_sizes(1, [50, 100]) == [1, 1]


def test_a_stage_never_releases_more_than_asked_but_at_least_one() -> None:
    assert stage_sizes(3, [34, 100]) == [1, 3]  # 34 % of 3 is 1.02: one device, not two
    assert stage_sizes(3, [1, 10, 100]) == [1, 1, 3]  # 10 % of 3 rounds down to the 1 released
    assert stage_sizes(7, [50, 100]) == [3, 7]
    for total in range(1, 60):
        for stages in ([1, 100], [5, 34, 67, 100], [10, 50, 99, 100]):
            sizes = stage_sizes(total, stages)
            assert sizes[-1] == total and sizes[0] >= 1
            assert sizes == sorted(sizes)
            for n, pct in zip(sizes[:-1], stages[:-1]):
                assert n <= max(1, total * pct / 100)


def test_the_final_state_says_whether_a_target_failed() -> None:
    assert final_state(0) == "completed"
    assert final_state(2) == "completed_with_failures"


def test_semantic_version_equality() -> None:
    assert versions_equal("1.1.10", "1.1.10")
    assert not versions_equal("1.1.10", "1.1.9")
    assert not versions_equal(None, "1.0.0")
    assert versions_equal("build-7", "build-7")


def test_delivery_method_follows_protocol_support_and_delivery_method() -> None:
    assert choose_method({0, 2}, 2, "auto") == "pull-coap"
    assert choose_method({2}, 0, "auto") == "pull-http"
    assert choose_method({0}, 1, "auto") == "push"
    assert choose_method({0}, 2, "push") == "push"
    assert choose_method(None, None, "auto") == "pull-coap"
    with pytest.raises(TargetFailed):
        choose_method({0}, 1, "pull")
    with pytest.raises(TargetFailed):
        choose_method({5}, 0, "auto")
