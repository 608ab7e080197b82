"""Semantic versions compare numerically and refuse anything else."""

from __future__ import annotations

import pytest

from ota.version import Version, VersionError, compare, parse


def test_patch_numbers_compare_numerically_not_as_text() -> None:
    assert compare("1.1.10", "1.1.9") == 1
    assert compare("1.1.9", "1.1.10") == -1
    assert compare("2.0.0", "2.0.0") == 0
    assert parse("10.0.0") > parse("9.99.99")


def test_parse_returns_the_numbers() -> None:
    assert parse("1.2.3") == Version(1, 2, 3)
    assert str(parse("0.10.7")) == "0.10.7"


@pytest.mark.parametrize("bad", ["1.2", "1.2.3.4", "v1.2.3", "01.2.3", "1.2.-3", "", "1.2.3 ",
                                 "1..3", "99999999999.0.0"])
def test_malformed_versions_are_refused(bad: str) -> None:
    with pytest.raises(VersionError):
        parse(bad)
