"""Benchmark: what sharing artifact bytes through PostgreSQL costs (lwm2m_server/store/blobs.py).

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres, database ``test``); the bench
makes a database of its own and drops it. For one raw firmware image of ``--size-mib`` MiB it
prints, per round:

1. upload: ``ingest_artifact`` on PostgreSQL (folder file + ``artifact_blob`` rows in the row's
   transaction) against the same ingest on SQLite (folder file only), in the same run;
2. first download on another process: ``ArtifactStore.ensure`` into an empty folder (the parts
   read from the database, hashed, written to a temporary file, renamed) against a verified
   local copy of the same file (read, SHA-256, write, rename), in MiB/s.

Every later block or range of that artifact is served from the folder's file, as on one host.

Usage: python bench/artifact_share_bench.py [--size-mib 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from lwm2m_server.store.artifacts import ingest_artifact  # noqa: E402
from lwm2m_server.store.blobs import blob_fetcher  # noqa: E402
from lwm2m_server.store.db import init_db, make_engine  # noqa: E402
from ota.store import ArtifactStore  # noqa: E402

PG_ADMIN = "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=3"
MIB = 1024 * 1024


def verified_copy(src: Path, folder: Path, sha: str) -> None:
    """The baseline: what keeping a checked copy of a local file costs."""
    tmp = folder / f".copy-{uuid.uuid4().hex}"
    h = hashlib.sha256()
    with src.open("rb") as f, tmp.open("wb") as out:
        while chunk := f.read(MIB):
            h.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    assert h.hexdigest() == sha
    os.replace(tmp, folder / sha)


def one_round(pg_url: str, work: Path, size: int, n: int) -> tuple[float, float, float, float]:
    data = os.urandom(size)  # a raw image: no MCUboot magic, so kept as firmware as it is
    sha = hashlib.sha256(data).hexdigest()
    kw = dict(kind="firmware", name=f"bench{n}", version="1.0.0", max_size=size)

    sqlite = make_engine(f"sqlite:///{work / f'r{n}.db'}")
    init_db(sqlite)
    t = time.perf_counter()
    ingest_artifact(sqlite, ArtifactStore(work / f"s{n}"), data, **kw)  # type: ignore[arg-type]
    t_sqlite = time.perf_counter() - t
    sqlite.dispose()

    pg = make_engine(pg_url)
    uploader = ArtifactStore(work / f"a{n}")
    t = time.perf_counter()
    ingest_artifact(pg, uploader, data, **kw)  # type: ignore[arg-type]
    t_pg = time.perf_counter() - t

    other = ArtifactStore(work / f"b{n}", fetch=blob_fetcher(pg))
    t = time.perf_counter()
    assert other.ensure(sha)
    t_fetch = time.perf_counter() - t
    pg.dispose()

    copy_dir = work / f"c{n}"
    copy_dir.mkdir()
    t = time.perf_counter()
    verified_copy(uploader.path(sha), copy_dir, sha)
    t_copy = time.perf_counter() - t
    return t_sqlite, t_pg, t_fetch, t_copy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=16, help="artifact size in MiB")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (a new artifact each)")
    args = ap.parse_args()
    if args.size_mib < 1 or args.rounds < 1:
        ap.error("--size-mib and --rounds must be at least 1")
    size = args.size_mib * MIB
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as e:
        sys.exit(f"artifact_share_bench: PostgreSQL on 127.0.0.1:5432 is not reachable: {e}")
    name = f"bench_share_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    work = Path(tempfile.mkdtemp(prefix="share-bench-"))
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        init_db(make_engine(url))
        print(f"artifact {args.size_mib} MiB, {args.rounds} rounds, cores: {os.cpu_count()}, "
              f"load: {os.getloadavg()[0]:.2f}")
        ratios_up, ratios_fetch, fetch_rates = [], [], []
        for n in range(args.rounds):
            t_sqlite, t_pg, t_fetch, t_copy = one_round(url, work, size, n)
            mb = size / MIB
            ratios_up.append(t_pg / t_sqlite)
            ratios_fetch.append(t_fetch / t_copy)
            fetch_rates.append(mb / t_fetch)
            print(f"round {n + 1}: upload PostgreSQL {t_pg:.3f} s, SQLite {t_sqlite:.3f} s "
                  f"(x{t_pg / t_sqlite:.2f}); first fetch from the database {t_fetch:.3f} s "
                  f"({mb / t_fetch:.0f} MiB/s), verified local copy {t_copy:.3f} s "
                  f"({mb / t_copy:.0f} MiB/s) (x{t_fetch / t_copy:.2f})")
        print(f"median: upload x{statistics.median(ratios_up):.2f} of SQLite's; first fetch "
              f"{statistics.median(fetch_rates):.0f} MiB/s, x{statistics.median(ratios_fetch):.2f}"
              " of a verified local copy")
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
