"""Where the server process spends its time: py-spy samples, summarised by part.

``with PySpy(os.getpid()) as spy: ...`` runs ``py-spy record`` on the process while the block
runs (``py-spy`` on PATH: ``pip install py-spy``; it needs permission to read another process's
memory, as root or with ``ptrace`` allowed). py-spy samples from outside, without the GIL and
leaving idle threads out, so the shares are those of the CPU time, Python and C alike.

:func:`summarize` charges every sample to the part that owns it: walking from the innermost
frame outwards, the first frame in aiocoap, the event loop and sockets, SQLAlchemy and the
database drivers, or the project decides (so ``json`` called by the store counts as the
project's, ``ipaddress`` called by aiocoap as aiocoap's).
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import tempfile

__all__ = ["PySpy", "summarize", "PARTS"]

# (part, substring of a frame's file path); the first match names the frame's part.
PARTS = [
    ("aiocoap", "/aiocoap/"),
    ("event loop and sockets", "/asyncio/"),
    ("event loop and sockets", "/selectors.py"),
    ("event loop and sockets", "/socket.py"),
    ("SQLAlchemy and database driver", "/sqlalchemy/"),
    ("SQLAlchemy and database driver", "/sqlmodel/"),
    ("SQLAlchemy and database driver", "/psycopg"),
    ("SQLAlchemy and database driver", "/sqlite3/"),
    ("project", "/lwm2m_server/"),
]
OTHER = "other (threads, runtime, bench)"
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*):\d+\)$")


def _part(filename: str) -> str | None:
    for name, marker in PARTS:
        if marker in filename:
            return name
    return None


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/lwm2m_server/"):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return tail if marker == "/site-packages/" else "lwm2m_server/" + tail
    return filename.rsplit("/", 1)[-1]


def summarize(raw: str, top: int = 12) -> list[str]:
    """Lines: the share of samples per part, per project module (innermost project frame), and
    the aiocoap and project functions with the largest cumulative share."""
    parts: collections.Counter[str] = collections.Counter()
    modules: collections.Counter[str] = collections.Counter()
    cumulative: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = []
        for text in stack.split(";"):
            m = _FRAME.match(text)
            frames.append((m.group("func"), m.group("file")) if m else (text, ""))
        owner = None
        seen = set()
        for func, filename in reversed(frames):  # innermost first
            part = _part(filename)
            if owner is None and part is not None:
                owner = part
                if part == "project":
                    modules[_short(filename)] += n
            if part in ("aiocoap", "project"):
                seen.add(f"{_short(filename)}:{func}")
        parts[owner or OTHER] += n
        for name in seen:
            cumulative[name] += n
    if not total:
        return ["no samples"]
    out = [f"{total} samples; by part (innermost owning frame):"]
    out += [f"  {c / total * 100:5.1f}%  {name}" for name, c in parts.most_common()]
    out.append("project modules (innermost project frame):")
    out += [f"  {c / total * 100:5.1f}%  {name}" for name, c in modules.most_common(8)]
    out.append("functions by cumulative share (aiocoap and project):")
    out += [f"  {c / total * 100:5.1f}%  {name}" for name, c in cumulative.most_common(top)]
    return out


class PySpy:
    """py-spy recording the process ``pid`` while the ``with`` block runs; ``.report()`` after."""

    def __init__(self, pid: int, rate: int = 250) -> None:
        exe = shutil.which("py-spy")
        if exe is None:
            raise RuntimeError("py-spy is not on PATH: pip install py-spy")
        self._fd, self.path = tempfile.mkstemp(suffix=".txt", prefix="py-spy-")
        self._cmd = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking",
                     "--full-filenames", "--format", "raw", "--output", self.path]
        self._proc: subprocess.Popen[bytes] | None = None
        self.raw = ""

    def __enter__(self) -> PySpy:
        self._proc = subprocess.Popen(self._cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        _, err = self._proc.communicate(timeout=60)
        with open(self.path) as f:
            self.raw = f.read()
        os.close(self._fd)
        os.unlink(self.path)
        if not self.raw and self._proc.returncode:
            raise RuntimeError(f"py-spy failed: {err.decode(errors='replace').strip()[-300:]}")

    def report(self, top: int = 12) -> list[str]:
        return summarize(self.raw, top)
