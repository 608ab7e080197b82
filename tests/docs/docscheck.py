"""What the docs check reads in Markdown, and the checks themselves, as pure functions.

The Markdown is split into code (fenced and indented blocks, inline code spans) and prose, each
piece with the line it starts on, so that every problem names ``file:line``. The checks take the
real command-line parser, the real app's routes and the real file tree as arguments; the tests
in ``test_docs.py`` hand them in, and also feed them broken text to show that each can fail.
"""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Route",
    "Snippet",
    "app_routes",
    "check_bench_flags",
    "check_commands",
    "check_links",
    "check_module_map",
    "check_paths",
    "check_routes",
    "prose",
    "slugs",
    "snippets",
]


@dataclass(frozen=True)
class Snippet:
    """A piece of a Markdown file: its text, the file, the line it starts on, and its kind."""

    file: str
    line: int
    text: str
    block: bool  # True for a line of a code block (continuations joined), False for an inline span

    def where(self, offset: int = 0) -> str:
        """``file:line`` of the character at ``offset`` in the text."""
        return f"{self.file}:{self.line + self.text.count(chr(10), 0, offset)}"


_FENCE = re.compile(r"^\s*(```|~~~)")
_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)


def _blocks(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, list[str]]]]:
    """Code-block lines (line number, text) and prose paragraphs (first line, lines)."""
    code: list[tuple[int, str]] = []
    paragraphs: list[tuple[int, list[str]]] = []
    para: list[str] = []
    para_start = 0
    fenced = False
    indented = False
    previous_blank = True
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
            previous_blank = False
            continue
        if fenced:
            code.append((number, line))
            continue
        blank = not line.strip()
        # An indented block starts after a blank line and goes on while lines stay indented.
        if line.startswith(("    ", "\t")) and (indented or previous_blank) and not para:
            indented = True
            code.append((number, line))
            previous_blank = False
            continue
        if not blank:
            indented = False
        if blank:
            if para:
                paragraphs.append((para_start, para))
                para = []
        else:
            if not para:
                para_start = number
            para.append(line)
        previous_blank = blank
    if para:
        paragraphs.append((para_start, para))
    return code, paragraphs


def snippets(file: str, text: str) -> list[Snippet]:
    """Every piece of code in a Markdown text: logical lines of code blocks (a line ending in a
    backslash goes on with the next) and inline code spans (which may cross line breaks)."""
    code, paragraphs = _blocks(text)
    out: list[Snippet] = []
    pending: list[str] = []
    start = 0
    for number, line in code:
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending.append(line.rstrip()[:-1])
            continue
        pending.append(line)
        out.append(Snippet(file, start, "\n".join(pending), True))
        pending = []
    if pending:
        out.append(Snippet(file, start, "\n".join(pending), True))
    for first, lines in paragraphs:
        joined = "\n".join(lines)
        for m in _SPAN.finditer(joined):
            out.append(Snippet(file, first + joined.count("\n", 0, m.start(2)),
                               m.group(2).strip(), False))
    return out


def prose(file: str, text: str) -> list[Snippet]:
    """The paragraphs of a Markdown text outside code blocks (spans included), one per paragraph."""
    _, paragraphs = _blocks(text)
    return [Snippet(file, first, "\n".join(lines), False) for first, lines in paragraphs]


# --- CLI commands and flags --------------------------------------------------------------------

# A token that ends a shell command: pipes, lists, redirections, comments.
_SHELL_END = re.compile(r"^(\||\|\||&&|&|;|>|>>|2>|2>&1|<|#.*)$")
_WORD = re.compile(r"[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser] | None:
    for action in parser._actions:  # argparse has no public way to list sub-commands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return None


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings}


def _clean(token: str) -> str:
    # Brackets and quotes around a word go, and Markdown tables escape "|" with a backslash.
    return token.replace("\\|", "|").strip("[](),`'\"")


def _command_tokens(text: str, start: int) -> list[tuple[int, str]]:
    """The tokens (offset, text) after ``start``, up to where the shell command ends."""
    tokens: list[tuple[int, str]] = []
    for m in re.finditer(r"\S+", text[start:]):
        token = m.group(0)
        if _SHELL_END.match(token) or token.startswith("#"):
            break
        tokens.append((start + m.start(), token))
        if token.endswith(")") and not token.endswith("])"):
            break  # the end of a $( ... ) substitution
    return tokens


def check_commands(pieces: Iterable[Snippet], parser: argparse.ArgumentParser) -> list[str]:
    """Problems with ``lwm2m-server COMMAND [SUBCOMMAND] [--flags]`` named in code: an unknown
    command or sub-command, or a flag the (sub-)command does not take."""
    problems: list[str] = []
    commands = _subparsers(parser) or {}
    for piece in pieces:
        for m in re.finditer(r"(?<![\w/.-])lwm2m-server(?![\w-])", piece.text):
            where = piece.where(m.start())
            tokens = _command_tokens(piece.text, m.end())
            if not tokens or tokens[0][1].startswith("-"):
                chosen = [parser]
                rest = tokens
            else:
                word = _clean(tokens[0][1])
                if not _WORD.fullmatch(word):
                    continue  # a placeholder such as COMMAND or ...
                chosen = []
                for name in word.split("|"):
                    if name not in commands:
                        problems.append(f"{where}: `lwm2m-server {name}`: no such command "
                                        f"(commands: {', '.join(sorted(commands))})")
                    else:
                        chosen.append(commands[name])
                rest = tokens[1:]
                if not chosen:
                    continue
                subs = [_subparsers(p) for p in chosen]
                if rest and all(s is not None for s in subs):
                    sub_word = _clean(rest[0][1])
                    if not rest[0][1].startswith("-") and _WORD.fullmatch(sub_word):
                        picked = []
                        for sub_name in sub_word.split("|"):
                            for s in subs:
                                assert s is not None
                                if sub_name not in s:
                                    problems.append(
                                        f"{where}: `lwm2m-server {word} {sub_name}`: no such "
                                        f"sub-command (there are: {', '.join(sorted(s))})")
                                else:
                                    picked.append(s[sub_name])
                        chosen = picked
                        rest = rest[1:]
            for offset, token in rest:
                flag = _clean(token).split("=", 1)[0]
                if not re.fullmatch(r"--?[a-zA-Z][\w-]*", flag):
                    continue
                for p in chosen:
                    if flag not in _options(p):
                        problems.append(f"{piece.where(offset)}: `{p.prog} {flag}`: no such flag "
                                        f"(it takes: {', '.join(sorted(_options(p)))})")
    return problems


def check_bench_flags(pieces: Iterable[Snippet], root: Path) -> list[str]:
    """Problems with ``bench/NAME.py [--flags]`` named in code: a missing script, or a flag that
    the script does not define (looked up as the literal ``"--flag"`` in its source)."""
    problems: list[str] = []
    for piece in pieces:
        for m in re.finditer(r"(?<![\w/])bench/([\w-]+\.py)", piece.text):
            script = root / "bench" / m.group(1)
            where = piece.where(m.start())
            if not script.is_file():
                problems.append(f"{where}: bench/{m.group(1)}: no such script")
                continue
            source = script.read_text(encoding="utf-8")
            for offset, token in _command_tokens(piece.text, m.end()):
                flag = _clean(token).split("=", 1)[0]
                if re.fullmatch(r"--[a-zA-Z][\w-]*", flag) and f'"{flag}"' not in source:
                    problems.append(f"{piece.where(offset)}: bench/{m.group(1)} has no flag {flag}")
    return problems


# --- REST routes -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    """One route of the app: its methods and its path template (``{name}``, ``{name:path}``)."""

    methods: frozenset[str]
    path: str

    def pattern(self) -> re.Pattern[str]:
        """The concrete paths (and same-shaped templates) this route answers."""
        out = ""
        for part in re.split(r"(\{[^}]*\})", self.path):
            if part.startswith("{"):
                out += ".+" if part.endswith(":path}") else "[^/]+"
            else:
                out += re.escape(part)
        return re.compile(out)


def app_routes(app: Any) -> list[Route]:
    """Every HTTP route of a Starlette/FastAPI app, looking inside included routers and mounts."""
    routes: list[Route] = []

    def walk(items: Iterable[object], prefix: str) -> None:
        for item in items:
            contexts = getattr(item, "effective_route_contexts", None)
            if contexts is not None:  # FastAPI keeps included routers as one entry
                walk(contexts(), prefix)
            elif getattr(item, "methods", None) and getattr(item, "path", None) is not None:
                routes.append(Route(frozenset(item.methods), prefix + item.path))  # type: ignore[attr-defined]
            elif getattr(item, "routes", None) is not None:
                walk(item.routes, prefix + getattr(item, "path", ""))  # type: ignore[attr-defined]

    walk(app.routes, "")
    return routes


_METHOD = r"(?:GET|POST|PUT|DELETE|PATCH|HEAD)"
_METHODS_AND_PATH = re.compile(
    rf"\b({_METHOD}(?:\s*(?:\\?\||/)\s*{_METHOD})*)\s+(/api/v1[\w\-{{}}./:\[\]|\\?=&*]*)")
_BARE_PATH = re.compile(r"(?<![A-Za-z_./-])(/api/v1/[\w\-{}./:\[\]|\\?=&*]*)")


def _expand(path: str) -> list[str]:
    """The concrete paths a documented path stands for: query strings dropped, ``[optional]``
    parts with and without, ``a|b`` segments each, ``...`` as one segment."""
    path = path.replace("\\|", "|")
    path = re.sub(r"\[\?[^\]]*\]?", "", path)
    path = path.split("?", 1)[0].replace("...", "{x}").rstrip(".,;:")
    m = re.search(r"\[([^\[\]]*)\]", path)
    if m:
        return _expand(path[:m.start()] + m.group(1) + path[m.end():]) + \
            _expand(path[:m.start()] + path[m.end():])
    path = path.replace("[", "").replace("]", "")
    paths = [""]
    for segment in path.split("/")[1:]:
        paths = [p + "/" + alt for p in paths for alt in segment.split("|")]
    return [p.rstrip("/") or "/" for p in paths]


def _curl_method(text: str) -> str | None:
    """The method of a curl command line, or None when the text is no curl command."""
    if not re.search(r"(?<![\w-])curl\s", text):
        return None
    m = re.search(r"(?:-X|--request)\s+([A-Z]+)", text)
    if m:
        return m.group(1)
    if re.search(r"\s(?:-d|--data\S*|-F|--form)\s", text):
        return "POST"
    return "GET"


def check_routes(pieces: Iterable[Snippet], routes: list[Route]) -> list[str]:
    """Problems with REST routes named in the docs: ``METHOD /api/v1/...`` must exist with that
    method, a bare ``/api/v1/...`` path with any (a curl command's path with the curl's method)."""
    problems: list[str] = []
    compiled = [(r, r.pattern()) for r in routes if r.path.startswith("/api/v1")]

    def check(where: str, methods: list[str] | None, documented: str) -> None:
        for path in _expand(documented):
            matching = [r for r, pattern in compiled if pattern.fullmatch(path)]
            if not matching:
                problems.append(f"{where}: `{path}` (from `{documented}`): no such route")
                continue
            for method in methods or []:
                if not any(method in r.methods for r in matching):
                    allowed = sorted({x for r in matching for x in r.methods})
                    problems.append(f"{where}: `{method} {path}`: no such route "
                                    f"(that path takes {', '.join(allowed)})")

    for piece in pieces:
        named: list[tuple[int, int]] = []
        for m in _METHODS_AND_PATH.finditer(piece.text):
            methods = re.findall(_METHOD, m.group(1))
            check(piece.where(m.start()), methods, m.group(2))
            named.append((m.start(2), m.end(2)))
        curl = _curl_method(piece.text) if piece.block else None
        for m in _BARE_PATH.finditer(piece.text):
            if any(a <= m.start() < b for a, b in named):
                continue
            check(piece.where(m.start()), [curl] if curl else None, m.group(1))
    return problems


# --- links, paths and the module map --------------------------------------------------------

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def slugs(markdown: str) -> set[str]:
    """The anchors GitHub makes for a Markdown file's headings."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        if fenced or not re.match(r"#{1,6}\s", line):
            continue
        title = line.lstrip("#").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def check_links(pieces: Iterable[Snippet], base: Path) -> list[str]:
    """Problems with relative Markdown links: a target file that does not exist, or an anchor
    (``page.md#part``) that is no heading of the target. ``base`` is the folder of each piece's
    file, relative to which ``piece.file`` is given."""
    problems: list[str] = []
    for piece in pieces:
        text = _SPAN.sub(lambda m: " " * len(m.group(0)) if "\n" not in m.group(0) else m.group(0),
                         piece.text)
        for m in _LINK.finditer(text):
            target = m.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue  # http:, https:, mailto:
            file_part, _, anchor = target.partition("#")
            source = base / piece.file
            resolved = (source.parent / file_part).resolve() if file_part else source
            where = piece.where(m.start())
            if not resolved.exists():
                problems.append(f"{where}: link to `{target}`: {file_part} does not exist")
            elif anchor and resolved.suffix == ".md" and \
                    anchor not in slugs(resolved.read_text(encoding="utf-8")):
                problems.append(f"{where}: link to `{target}`: no heading #{anchor} in {file_part or piece.file}")
    return problems


_TOP_DIRS = ("lwm2m_server", "ota", "tests", "bench", "examples", "objects", "scripts", "docs",
             "firmware")
_REPO_PATH = re.compile(rf"(?<![\w/.<-])((?:{'|'.join(_TOP_DIRS)})/[\w./-]*|(?:\w+/)+\w+\.py)(?![\w<*{{])")


# A path right after one of these is what a command writes, not something that must exist.
_OUTPUT_BEFORE = re.compile(r"(?:\s-o|--output|--out[\w-]*|>)\s*$")


def named_paths(piece: Snippet) -> Iterator[tuple[int, str]]:
    """Repository paths named in a code piece (under a top-level folder, or a ``dir/*.py``),
    leaving out the files a command in the piece writes."""
    for m in _REPO_PATH.finditer(piece.text):
        path = m.group(1).rstrip(".,:;")
        if "..." in path or path.endswith("/-") or _OUTPUT_BEFORE.search(piece.text[:m.start()]):
            continue
        yield m.start(), path


def _exists(root: Path, piece: Snippet, path: str) -> bool:
    # Relative to the repository or to the page's own folder; a short module path
    # (protocol/queue.py) is read inside lwm2m_server/.
    return ((root / path).exists() or (root / piece.file).parent.joinpath(path).exists()
            or (path.endswith(".py") and (root / "lwm2m_server" / path).exists()))


def check_paths(pieces: Iterable[Snippet], root: Path) -> list[str]:
    """Problems with repository paths named in code: each must exist."""
    problems: list[str] = []
    for piece in pieces:
        for offset, path in named_paths(piece):
            if not _exists(root, piece, path):
                problems.append(f"{piece.where(offset)}: `{path}` does not exist")
    return problems


def module_files(root: Path, packages: Iterable[str]) -> list[str]:
    """Every Python module file of ``packages``, as repository paths."""
    out = []
    for package in packages:
        for f in sorted((root / package).rglob("*.py")):
            if "__pycache__" not in f.parts:
                out.append(f.relative_to(root).as_posix())
    return out


def check_module_map(file: str, text: str, root: Path, packages: Iterable[str]) -> list[str]:
    """Problems with the module map: a module that no table row of ``text`` starts with (a
    package's ``__init__.py`` is named by the package folder ``pkg/`` or by its path)."""
    named = {m.group(1).rstrip("/") for m in re.finditer(r"^\|\s*`([^`]+)`\s*\|", text, re.MULTILINE)}
    problems: list[str] = []
    for module in module_files(root, packages):
        package = module.rsplit("/", 1)[0]
        if module in named or (module.endswith("/__init__.py") and package in named):
            continue
        problems.append(f"{file}: `{module}` has no row in the module map; for example\n"
                        f"    | `{module}` | {_first_line(root / module)} |")
    return problems


def _first_line(module: Path) -> str:
    """The first sentence of a module's docstring (a starting point for its row in the map)."""
    try:
        doc = ast.get_docstring(ast.parse(module.read_text(encoding="utf-8"))) or ""
    except SyntaxError:
        doc = ""
    return " ".join(doc.split("\n\n")[0].split()).replace("``", "`") or "(no docstring)"
