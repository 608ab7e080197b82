"""A bounded fuzz run of every decoder (the long run: bench/fuzz_decoders.py --minutes N)."""

from __future__ import annotations

import os

from tests.fuzz.harness import fuzz_decoders

SECONDS = float(os.environ.get("LWM2M_FUZZ_SECONDS", "3"))


def test_decoders_refuse_random_and_mutated_payloads_with_their_own_error_only() -> None:
    n, outcomes, crashes = fuzz_decoders(seconds=SECONDS, seed=11)
    assert n > 1000
    assert crashes == [], crashes
    assert outcomes["refused"] > 0 and outcomes["decoded"] > 0  # both paths were exercised
