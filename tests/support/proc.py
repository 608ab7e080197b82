"""This machine's processes and ports, for tests and benches: free loopback ports, resident
memory and CPU time of a process (Linux /proc), the open-file limit."""

from __future__ import annotations

import os
import resource
import socket

__all__ = ["free_port", "rss_kib", "rss_bytes", "process_cpu", "raise_fd_limit"]


def free_port(kind: str = "udp", host: str = "127.0.0.1") -> int:
    """A port that is free right now on ``host`` (``kind`` "udp" or "tcp")."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    stype = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    with socket.socket(family, stype) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int | None = None) -> int:
    """Resident set size of ``pid`` (this process by default) in KiB."""
    with open(f"/proc/{pid or 'self'}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid or 'self'}")


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of ``pid`` (this process by default) in bytes."""
    return rss_kib(pid) * 1024


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raise_fd_limit(want: int) -> None:
    """Raise the soft open-file limit to ``want`` (SystemExit when the hard limit is lower)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if want > hard:
        raise SystemExit(f"{want} file descriptors needed; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
