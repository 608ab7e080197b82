"""The server-core fixtures (see tests/protocol/conftest.py)."""

from tests.protocol.conftest import (  # noqa: F401
    DEVICE_VALUES, clients, count_rows, db_url, make_server, pg_url, running, server, sqlite_url)
