"""The docs name only what exists: every ``lwm2m-server`` command and flag, every ``/api/v1``
route, every link between pages and every repository path they name; the module map in
docs/architecture.md names every module of ``lwm2m_server`` and ``ota``; docs/index.md lists
every page. Each failure names the file and line of what is wrong.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from tests.docs.docscheck import (
    Route,
    Snippet,
    app_routes,
    check_bench_flags,
    check_commands,
    check_links,
    check_module_map,
    check_paths,
    check_routes,
    prose,
    snippets,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lwm2m_server", "ota")


def doc_files() -> list[str]:
    """README.md, every docs/*.md and the firmware's own README, as repository paths."""
    files = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]
    if (ROOT / "firmware/zephyr_client/README.md").is_file():
        files.append("firmware/zephyr_client/README.md")
    return files


@functools.cache
def _read(file: str) -> str:
    return (ROOT / file).read_text(encoding="utf-8")


def code_pieces(files: list[str] | None = None) -> list[Snippet]:
    return [s for f in files or doc_files() for s in snippets(f, _read(f))]


def route_pieces() -> list[Snippet]:
    # Prose paragraphs (inline code included) and code-block lines: each route seen once.
    return [s for f in doc_files() for s in [*(x for x in snippets(f, _read(f)) if x.block),
                                                 *prose(f, _read(f))]]


@functools.cache
def cli_parser() -> argparse.ArgumentParser:
    """The real parser with every command registered (what ``lwm2m-server`` runs)."""
    from lwm2m_server.cli import build_parser

    return build_parser()


@functools.cache
def api_routes() -> tuple[Route, ...]:
    """The routes of the real app, as ``lwm2m-server run`` serves it (without a running server)."""
    from lwm2m_server.app import create_app
    from lwm2m_server.config import Settings

    return tuple(app_routes(create_app(Settings())))  # type: ignore[call-arg]  # all fields have defaults


def _report(problems: list[str]) -> str:
    return f"{len(problems)} problem(s):\n" + "\n".join(problems)


# --- the docs as they are ------------------------------------------------------------------

def test_every_command_and_flag_the_docs_name_exists() -> None:
    problems = check_commands(code_pieces(), cli_parser())
    assert not problems, _report(problems)


def test_every_bench_script_and_flag_the_docs_name_exists() -> None:
    problems = check_bench_flags(code_pieces(), ROOT)
    assert not problems, _report(problems)


def test_every_rest_route_the_docs_name_exists() -> None:
    problems = check_routes(route_pieces(), list(api_routes()))
    assert not problems, _report(problems)


def test_every_link_between_pages_resolves() -> None:
    pieces = [p for f in doc_files() for p in prose(f, _read(f))]
    problems = check_links(pieces, ROOT)
    assert not problems, _report(problems)


def test_every_repository_path_the_docs_name_exists() -> None:
    problems = check_paths(code_pieces(), ROOT)
    assert not problems, _report(problems)


def test_module_map_names_every_module_of_the_packages() -> None:
    pieces = code_pieces(["docs/architecture.md"])
    problems = check_paths(pieces, ROOT) + check_module_map(
        "docs/architecture.md", _read("docs/architecture.md"), ROOT, PACKAGES)
    assert not problems, _report(problems)


def test_index_lists_every_page() -> None:
    index = _read("docs/index.md")
    missing = [f"docs/index.md: no link to {p.name}" for p in sorted((ROOT / "docs").glob("*.md"))
               if p.name != "index.md" and f"]({p.name})" not in index]
    assert not missing, _report(missing)


def test_readme_stays_a_front_door() -> None:
    readme = _read("README.md")
    assert len(readme.encode()) <= 8 * 1024, f"README.md is {len(readme.encode())} bytes (keep it under 8 KiB)"
    for heading in ("## Set-up", "## Quick tour", "## Where next"):
        assert heading in readme, f"README.md: no `{heading}` section"
    assert "bash scripts/test.sh" in readme and "lwm2m-server run" in readme


def test_settings_table_names_every_setting() -> None:
    from lwm2m_server.config import Settings

    page = _read("docs/server.md")
    missing = [f"docs/server.md: `LWM2M_{name.upper()}` (Settings.{name}) is not in the settings table"
               for name in Settings.model_fields if f"`LWM2M_{name.upper()}`" not in page]
    assert not missing, _report(missing)


# --- each check can fail -------------------------------------------------------------------

def _pieces(text: str) -> list[Snippet]:
    return snippets("bad.md", text)


def test_an_unknown_command_subcommand_or_flag_is_reported_with_its_line() -> None:
    text = ("Intro.\n\n    lwm2m-server token create --name a --scopes read\n"
            "    lwm2m-server tokens list\n\n"
            "Then `lwm2m-server deploy frobnicate 1` and\n`lwm2m-server run --coap-prot 1` and "
            "`lwm2m-server keys generate|export-c --frobnicate`.\n\n"
            "    TOKEN=$(lwm2m-server token create --name x --scope read) && lwm2m-server run \\\n"
            "        --objects d --nope\n")
    problems = check_commands(_pieces(text), cli_parser())
    assert len(problems) == 7, problems  # generate and export-c both lack --frobnicate
    assert problems[0].startswith("bad.md:4: `lwm2m-server tokens`")
    assert any(p.startswith("bad.md:9: `lwm2m-server token create --scope`") for p in problems)
    assert any(p.startswith("bad.md:10: `lwm2m-server run --nope`") for p in problems)
    assert any(p.startswith("bad.md:6: `lwm2m-server deploy frobnicate`") for p in problems)
    assert any(p.startswith("bad.md:7: `lwm2m-server run --coap-prot`") for p in problems)
    assert any(p.startswith("bad.md:7: `lwm2m-server keys export-c --frobnicate`") for p in problems)
    assert any(p.startswith("bad.md:7: `lwm2m-server keys generate --frobnicate`") for p in problems)


def test_an_unknown_bench_script_or_flag_is_reported() -> None:
    text = "    python bench/rest_bench.py --requests 10 --nope\n    python bench/no_such.py\n"
    problems = check_bench_flags(_pieces(text), ROOT)
    assert problems == ["bad.md:1: bench/rest_bench.py has no flag --nope",
                        "bad.md:2: bench/no_such.py: no such script"]


def test_an_unknown_route_or_method_is_reported_with_its_line() -> None:
    routes = list(api_routes())
    text = ("| `GET /api/v1/devices/{endpoint}/data/{path}` | fine |\n"
            "| `PATCH /api/v1/devices/{endpoint}` | wrong method |\n"
            "| `POST /api/v1/deployments/{id}/pause\\|resume\\|frobnicate` | one unknown |\n"
            "| `GET /api/v1/artifacts[/{id}/frobnicate]` | optional part unknown |\n\n"
            "    curl -X DELETE localhost:8080/api/v1/devices/sim-0000/latest\n"
            "    curl -H 'x: y' 'localhost:8080/api/v1/devices/sim-0000/data/3/0?timeout=3'\n\n"
            "Poll `/api/v1/request/{id}`.\n")
    pieces = [s for s in _pieces(text) if s.block] + prose("bad.md", text)
    problems = check_routes(pieces, routes)
    assert [p.split(":")[1] for p in problems] == ["6", "2", "3", "4", "9"], problems
    assert "`DELETE /api/v1/devices/sim-0000/latest`" in problems[0]
    assert "`/api/v1/deployments/{id}/frobnicate`" in problems[2]
    assert "`/api/v1/artifacts/{id}/frobnicate`" in problems[3]


def test_a_broken_link_or_anchor_is_reported_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Some part\n")
    text = ("See [a](a.md), [part](a.md#some-part), [top](#b) and\n"
            "[gone](gone.md), [wrong part](a.md#other), [web](https://example.org/x.md),\n"
            "`[not a link](in-code.md)`.\n\n# B\n")
    (tmp_path / "docs" / "b.md").write_text(text)
    problems = check_links(prose("docs/b.md", text), tmp_path)
    assert problems == ["docs/b.md:2: link to `gone.md`: gone.md does not exist",
                        "docs/b.md:2: link to `a.md#other`: no heading #other in a.md"]


def test_a_missing_path_or_unmapped_module_is_reported(tmp_path: Path) -> None:
    for f in ("ota/__init__.py", "ota/one.py", "ota/sub/__init__.py", "ota/sub/two.py"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("")
    (tmp_path / "lwm2m_server").mkdir()
    text = ("| `ota/__init__.py` | the package |\n| `ota/one.py` | one |\n"
            "| `ota/sub/` | sub |\n| `lwm2m_server/gone.py` | moved away |\n")
    pieces = _pieces(text)
    assert check_paths(pieces, tmp_path) == ["bad.md:4: `lwm2m_server/gone.py` does not exist"]
    text += "Prose naming `ota/sub/two.py` is no row of the map.\n"
    (tmp_path / "ota/sub/two.py").write_text('"""The second part.\n\nMore."""\n')
    assert check_module_map("map.md", text, tmp_path, ["ota"]) == [
        ("map.md: `ota/sub/two.py` has no row in the module map; for example\n"
         "    | `ota/sub/two.py` | The second part. |")]
