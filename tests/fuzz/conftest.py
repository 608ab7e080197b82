"""Fixtures for the fuzz runs (see tests/protocol/conftest.py)."""

from tests.protocol.conftest import sqlite_url  # noqa: F401
