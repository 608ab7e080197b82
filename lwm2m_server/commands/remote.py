"""The REST client every remote command shares: where the server is, the token, error lines.

A command that acts on a running server takes ``--server URL`` and ``--token T``; without the
flags it reads ``LWM2M_SERVER_URL`` and ``LWM2M_TOKEN``, then the profile that ``lwm2m-server
login`` wrote (``$XDG_CONFIG_HOME/lwm2m-server/profile.json``, else
``~/.config/lwm2m-server/profile.json``, mode 0600). It needs no local database. An error
answer becomes one ``error: ...`` line on stderr and exit code 1 (``RemoteError``).

Only the standard library: ``--help`` and a pipeline step stay fast.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # urllib.request costs ~15 ms: imported when a call is made, not for --help
    import urllib.error
    import urllib.request

__all__ = ["Client", "RemoteError", "add_remote_args", "client_from_args", "profile_path",
           "read_profile", "write_profile", "remote_configured", "use_local_db", "fail", "print_json",
           "SERVER_ENV", "DB_ENV", "DATA_DIR_ENV", "DB_HELP",
           "TOKEN_ENV", "DEFAULT_TIMEOUT", "EXIT_ERROR"]

SERVER_ENV = "LWM2M_SERVER_URL"
TOKEN_ENV = "LWM2M_TOKEN"
DB_ENV = "LWM2M_DB_URL"
DATA_DIR_ENV = "LWM2M_DATA_DIR"
DEFAULT_TIMEOUT = 30.0
EXIT_ERROR = 1
API = "/api/v1"


class RemoteError(Exception):
    """A remote call that did not work: the message for the ``error:`` line, the HTTP status
    (None when no answer came) and the API's error kind."""

    def __init__(self, message: str, status: int | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind


def profile_path() -> Path:
    """Where ``lwm2m-server login`` keeps the server URL and token."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "lwm2m-server" / "profile.json"


def read_profile() -> dict[str, str]:
    """The saved profile ({} when there is none); refuses one that others can read."""
    path = profile_path()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise RemoteError(f"{path} is readable by other users; run chmod 600 on it "
                          "(it holds a token)")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RemoteError(f"cannot read the profile {path}: {e}") from None
    return {k: str(v) for k, v in data.items() if k in ("server", "token")} if isinstance(data, dict) else {}


def write_profile(server: str, token: str) -> Path:
    """Save ``server`` and ``token`` for later commands (folder 0700, file 0600)."""
    path = profile_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"server": server, "token": token}, f)
    os.chmod(tmp, 0o600)  # an old file of that name may have had another mode
    os.replace(tmp, path)
    return path


def add_remote_args(parser: argparse.ArgumentParser) -> None:
    """``--server``, ``--token`` and ``--http-timeout`` for a command that talks to a server."""
    g = parser.add_argument_group("server", "the running server this command talks to (REST)")
    g.add_argument("--server", metavar="URL", default=None,
                   help=f"server base URL, e.g. https://lwm2m.example.com (default: "
                        f"${SERVER_ENV}, else the profile saved by 'lwm2m-server login')")
    g.add_argument("--token", metavar="T", default=None,
                   help=f"API token (default: ${TOKEN_ENV}, else the saved profile)")
    g.add_argument("--http-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help="seconds to wait for each HTTP answer")


def _settings(args: argparse.Namespace) -> tuple[str | None, str | None]:
    server = getattr(args, "server", None) or os.environ.get(SERVER_ENV) or None
    token = getattr(args, "token", None) or os.environ.get(TOKEN_ENV) or None
    if server is None or token is None:
        profile = read_profile()
        server = server or profile.get("server")
        token = token or profile.get("token")
    return server, token


def remote_configured(args: argparse.Namespace) -> bool:
    """True when a server is named by flag, environment or profile (the command goes remote)."""
    return _settings(args)[0] is not None


def use_local_db(args: argparse.Namespace) -> bool:
    """Whether a command that can do both works on a database directly (True) or on a server.

    ``--server`` wins; then ``--db`` or ``--data-dir``; then a server from the environment or
    the profile; then ``LWM2M_DB_URL`` or ``LWM2M_DATA_DIR``; then the default data folder if
    a database is there (a server ran on this host). Otherwise it is an error, never a new
    database somewhere (a CI runner has none).
    """
    if getattr(args, "server", None):
        return False
    if getattr(args, "db", None) or getattr(args, "data_dir", None):
        return True
    if remote_configured(args):
        return False
    if os.environ.get(DB_ENV) or os.environ.get(DATA_DIR_ENV):
        return True
    from ..config import default_data_dir

    if (default_data_dir() / "lwm2m.db").is_file():  # the server's host: its database is here
        return True
    raise RemoteError(_NO_SERVER + " (or, on the server's host, --db URL or --data-dir DIR to "
                      "work on its database directly)")


_NO_SERVER = (f"no server: give --server URL, set {SERVER_ENV}, or run "
              "'lwm2m-server login --server URL --token T'")
DB_HELP = ("work on this database directly instead of a running server (on the server's "
           f"host; default: ${DB_ENV} when no server is configured, else lwm2m.db in the data "
           "folder when --data-dir or $LWM2M_DATA_DIR is given)")


def client_from_args(args: argparse.Namespace) -> Client:
    """The client for the server the flags, environment or profile name."""
    server, token = _settings(args)
    if server is None:
        raise RemoteError(_NO_SERVER)
    return Client(server, token, timeout=float(getattr(args, "http_timeout", DEFAULT_TIMEOUT)))


def fail(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Wrap a command: a RemoteError becomes one ``error: ...`` line and exit code 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except RemoteError as e:
            print(f"error: {e.message}", file=sys.stderr)
            return EXIT_ERROR
    run.__name__ = func.__name__
    run.__doc__ = func.__doc__
    return run


class Client:
    """JSON over HTTP to one server: base URL, bearer token, timeout, one error shape.

    Every call sends an ``X-Request-Id`` (the server logs it beside the device exchanges the
    call causes); ``last_request_id`` keeps the last one.
    """

    def __init__(self, base_url: str, token: str | None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RemoteError(f"--server must be an http:// or https:// URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.last_request_id = ""
        self.last_status = 0

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                 body: bytes | None = None, content_type: str | None = None,
                 accept: str = "application/json") -> urllib.request.Request:
        import urllib.request

        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = self.base_url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        self.last_request_id = uuid.uuid4().hex[:16]
        headers = {"Accept": accept, "X-Request-Id": self.last_request_id,
                   "User-Agent": "lwm2m-server-cli"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if content_type:
            headers["Content-Type"] = content_type
        return urllib.request.Request(url, data=body, method=method, headers=headers)

    def _open(self, req: urllib.request.Request, timeout: float) -> Any:
        import urllib.error
        import urllib.request

        try:
            return urllib.request.urlopen(req, timeout=timeout)  # http(s) only: checked in __init__
        except urllib.error.HTTPError as e:
            raise _error_of(e) from None
        except urllib.error.URLError as e:
            raise RemoteError(f"cannot reach {self.base_url}: {e.reason}") from None
        except TimeoutError:
            raise RemoteError(f"no answer from {self.base_url} within {timeout:g} s") from None
        except OSError as e:
            raise RemoteError(f"cannot reach {self.base_url}: {e}") from None

    def call(self, method: str, path: str, *, json_body: Any = None,
             params: dict[str, Any] | None = None, body: bytes | None = None,
             content_type: str | None = None) -> Any:
        """``method`` on ``/api/v1`` + ``path``; the decoded JSON answer (None when empty)."""
        if json_body is not None:
            body, content_type = json.dumps(json_body).encode(), "application/json"
        req = self._request(method, API + path, params=params, body=body, content_type=content_type)
        with self._open(req, self.timeout) as resp:
            self.last_status = int(resp.status)
            try:
                raw = resp.read()
            except TimeoutError:
                raise RemoteError(f"no answer from {self.base_url} within "
                                  f"{self.timeout:g} s") from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise RemoteError(f"{method} {path}: the server did not answer JSON") from None

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, json_body=body if body is not None else {})

    def upload(self, path: str, fields: dict[str, str], file_name: str, data: bytes) -> Any:
        """POST a multipart form: ``fields`` and one file part named ``file``."""
        boundary = uuid.uuid4().hex
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                 for k, v in fields.items()]
        safe_name = file_name.replace('"', "_").replace("\r", "_").replace("\n", "_")
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                     f'filename="{safe_name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + data + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        return self.call("POST", path, body=b"".join(parts),
                         content_type=f"multipart/form-data; boundary={boundary}")

    def events(self, kinds: str | None = None, endpoint: str | None = None,
               on_open: Callable[[], None] | None = None) -> Iterator[dict[str, Any]]:
        """The server's live event stream (``/api/v1/events/stream``), one dict per event.

        ``on_open`` runs once the server has confirmed the subscription, so what the caller
        does there (create a deployment) cannot produce events the stream misses.
        """
        req = self._request("GET", API + "/events/stream", params={"kind": kinds, "endpoint": endpoint},
                            accept="text/event-stream")
        # The server sends a keepalive every 15 s: a read that waits longer means it is gone.
        with self._open(req, max(self.timeout, 40.0)) as resp:
            data: list[str] = []
            opened = False
            for raw in resp:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith(":"):
                    if not opened and on_open is not None:
                        opened = True
                        on_open()
                    continue
                if line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif not line and data:
                    try:
                        yield json.loads("\n".join(data))
                    except ValueError:
                        pass
                    data = []


def _error_of(e: urllib.error.HTTPError) -> RemoteError:
    """The API's ``{"detail", "error"}`` answer as a RemoteError (with a hint for 401/403)."""
    try:
        body = json.loads(e.read() or b"{}")
    except (ValueError, OSError):
        body = {}
    detail = body.get("detail") if isinstance(body, dict) else None
    kind = body.get("error") if isinstance(body, dict) else None
    message = str(detail) if detail else f"HTTP {e.code} {e.reason}"
    if e.code == 401:
        message += f" (give --token, set {TOKEN_ENV}, or run 'lwm2m-server login')"
    return RemoteError(message, e.code, kind)


def print_json(value: Any) -> None:
    """``value`` as one JSON document on stdout (what ``--json`` prints)."""
    print(json.dumps(value, indent=None))
