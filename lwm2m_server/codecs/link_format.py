"""CoRE link-format (RFC 6690, content format 40): registration payloads and Discover answers.

:func:`parse_links` and :func:`format_links` are the wire layer: ``</3/0>;pmin=10,</3/0/7>;dim=2``
to :class:`Link` values (target, ordered parameters) and back. The parser tolerates whitespace
and newlines around links and separators (some clients send them) but nothing else: an
unterminated ``<``, bad quoting, a stray character, a duplicate parameter, a bad value of an
LwM2M attribute (``pmin``, ``ver``, ``ct``, ...) or a payload over :data:`MAX_LINK_PAYLOAD`
raises CodecError naming the character offset.

On top of it, the LwM2M meaning: :class:`RegistrationLinks` (the root link and its alternate
path, the objects and instances as :class:`Path` values, object versions, the content formats
the device prefers) and :func:`parse_discover` (attributes per path).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..model import Path, PathError
from .base import CodecError

__all__ = [
    "Link", "parse_links", "format_links", "link_path", "RegistrationLinks", "parse_registration",
    "parse_discover", "MAX_LINK_PAYLOAD", "LWM2M_ROOT_RT",
]

MAX_LINK_PAYLOAD = 64 * 1024
LWM2M_ROOT_RT = "oma.lwm2m"

_WS = " \t\r\n"
_PARMNAME = re.compile(r"[A-Za-z0-9!#$&+\-.^_`|~]+\*?")
_PTOKEN = re.compile(r"[!#$%&'()*+\-./0-9:<=>?@A-Za-z\[\]^_`{|}~]+")
_TARGET = re.compile(r"[^\x00-\x20<>\"\x7f]+")
_LWM2M_PATH = re.compile(r"(?:/[0-9]+){1,4}")
# Parameters conventionally written quoted even when a bare token would do (RFC 6690 §3).
_ALWAYS_QUOTED = frozenset({"rt", "if", "anchor", "title", "rel", "rev", "hreflang", "media", "type"})

_UINT = re.compile(r"[0-9]+")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_VERSION = re.compile(r"[0-9]+\.[0-9]+")
_CT_LIST = re.compile(r"[0-9]+(?: [0-9]+)*")
# LwM2M attributes (1.1 §5.1.2) and ct: what their values must look like.
_ATTRIBUTE_VALUES: dict[str, tuple[re.Pattern[str], str]] = {
    **{n: (_UINT, "an unsigned integer") for n in ("pmin", "pmax", "epmin", "epmax", "dim")},
    **{n: (_NUMBER, "a number") for n in ("gt", "lt", "st")},
    "ver": (_VERSION, "a version like 1.1"),
    "ct": (_CT_LIST, "content-format numbers separated by spaces"),
}


@dataclass(frozen=True, slots=True)
class Link:
    """One link-value: ``<target>`` and its parameters in order (None for a flag parameter)."""

    target: str
    params: dict[str, str | None] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", dict(self.params))

    def __str__(self) -> str:
        return format_links([self])

    @property
    def path(self) -> Path:
        """The target as an LwM2M path (root ``/``); CodecError when it is not one."""
        return link_path(self.target)

    def content_formats(self) -> tuple[int, ...]:
        """The numbers in the ``ct`` parameter (none when absent)."""
        ct = self.params.get("ct")
        return tuple(int(n) for n in ct.split()) if ct else ()


# --- the wire layer --------------------------------------------------------------------------

def _text(payload: bytes | str) -> str:
    if isinstance(payload, str):
        size = len(payload.encode("utf-8", "surrogatepass"))
        text = payload
    elif isinstance(payload, (bytes, bytearray, memoryview)):
        size = len(payload)
        text = ""
    else:
        raise CodecError(f"a link-format payload is bytes or str, got {type(payload).__name__}")
    if size > MAX_LINK_PAYLOAD:
        raise CodecError(f"link-format payload of {size} bytes is over the {MAX_LINK_PAYLOAD}-byte bound")
    if not isinstance(payload, str):
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as e:
            raise CodecError(f"link-format payload is not valid UTF-8: {e.reason}",
                             f"offset {e.start}") from None
    return text


class _Scanner:
    """A cursor over the payload text; every error names the character offset."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str, at: int | None = None) -> CodecError:
        return CodecError(message, f"offset {self.pos if at is None else at}")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _WS:
            self.pos += 1

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def match(self, pattern: re.Pattern[str]) -> str:
        m = pattern.match(self.text, self.pos)
        if not m:
            return ""
        self.pos = m.end()
        return m.group()

    def target(self) -> str:
        start = self.pos
        if self.peek() != "<":
            raise self.error(f"expected '<' to start a link, got {self.peek()!r}")
        end = self.text.find(">", start + 1)
        if end < 0:
            raise self.error("unterminated '<': no '>' closes the link target")
        target = self.text[start + 1:end]
        if not _TARGET.fullmatch(target):
            raise self.error(f"invalid link target {target!r}", start + 1)
        self.pos = end + 1
        return target

    def quoted(self) -> str:
        start = self.pos
        self.pos += 1  # the opening quote
        out: list[str] = []
        while True:
            if self.at_end():
                raise self.error("unterminated quoted string", start)
            c = self.text[self.pos]
            if c == '"':
                self.pos += 1
                return "".join(out)
            if c == "\\":
                if self.pos + 1 >= len(self.text):
                    raise self.error("unterminated quoted string", start)
                c = self.text[self.pos + 1]
                self.pos += 1
            if (c < " " and c != "\t") or c == "\x7f":
                raise self.error(f"control character {c!r} in a quoted string")
            out.append(c)
            self.pos += 1

    def param(self) -> tuple[str, str | None]:
        name_at = self.pos
        name = self.match(_PARMNAME)
        if not name:
            raise self.error(f"expected a parameter name, got {self.peek()!r}")
        if self.peek() != "=":
            _check_attribute(name, None, name_at)
            return name, None
        self.pos += 1
        value_at = self.pos
        if self.peek() == '"':
            value = self.quoted()
        else:
            value = self.match(_PTOKEN)
            if not value:
                raise self.error(f"parameter {name!r} has '=' but no value")
        _check_attribute(name, value, value_at)
        return name, value


def _check_attribute(name: str, value: str | None, at: int) -> None:
    rule = _ATTRIBUTE_VALUES.get(name)
    if rule is None:
        return
    pattern, what = rule
    if value is None or not pattern.fullmatch(value):
        raise CodecError(f"attribute {name} must be {what}, got {value!r}", f"offset {at}")
    if name in ("dim", "ct") and any(int(n) > 65535 for n in value.split()):
        raise CodecError(f"attribute {name} values are 0..65535, got {value!r}", f"offset {at}")


def parse_links(payload: bytes | str) -> list[Link]:
    """The links of a CoRE link-format payload, in order; CodecError naming the offset."""
    s = _Scanner(_text(payload))
    links: list[Link] = []
    s.skip_ws()
    if s.at_end():
        return links
    while True:
        target = s.target()
        params: dict[str, str | None] = {}
        while True:
            s.skip_ws()
            if s.at_end() or s.peek() == ",":
                break
            if s.peek() != ";":
                raise s.error(f"expected ';' or ',' after a link, got {s.peek()!r}")
            s.pos += 1
            s.skip_ws()
            at = s.pos
            name, value = s.param()
            if name in params:
                raise s.error(f"duplicate parameter {name!r} on link <{target}>", at)
            params[name] = value
        links.append(Link(target, params))
        if s.at_end():
            return links
        comma = s.pos
        s.pos += 1
        s.skip_ws()
        if s.at_end():
            raise s.error("trailing ',' with no link after it", comma)


def _format_value(name: str, value: str) -> str:
    if name not in _ALWAYS_QUOTED and _PTOKEN.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_links(links: Iterable[Link]) -> str:
    """The link-format text of ``links`` (comma-separated, no whitespace)."""
    out: list[str] = []
    for link in links:
        if not _TARGET.fullmatch(link.target):
            raise CodecError(f"invalid link target {link.target!r}")
        parts = [f"<{link.target}>"]
        for name, value in link.params.items():
            if not _PARMNAME.fullmatch(name):
                raise CodecError(f"invalid parameter name {name!r} on <{link.target}>")
            parts.append(name if value is None else f"{name}={_format_value(name, value)}")
        out.append(";".join(parts))
    return ",".join(out)


# --- LwM2M meaning ---------------------------------------------------------------------------

def _root_prefix(root: str) -> str:
    return root.rstrip("/")


def link_path(target: str, root: str = "/") -> Path:
    """The LwM2M path a link target names under ``root`` (``/`` or an alternate path such as
    ``/lwm2m``); CodecError when the target is outside the root or not an LwM2M path."""
    prefix = _root_prefix(root)
    if prefix and not (target.startswith(prefix + "/") or target == prefix):
        raise CodecError(f"link <{target}> is outside the root path {root}")
    rest = target[len(prefix):]
    if not _LWM2M_PATH.fullmatch(rest):
        raise CodecError(f"link <{target}> is not an LwM2M object, instance or resource path")
    try:
        return Path.parse(rest)
    except PathError as e:
        raise CodecError(f"link <{target}>: {e}") from None


def _is_root_link(link: Link) -> bool:
    return LWM2M_ROOT_RT in (link.params.get("rt") or "").split()


@dataclass(frozen=True, slots=True)
class RegistrationLinks:
    """What a Register or Update payload says about the device (LwM2M 1.1 §6.2.1).

    ``root`` is ``/`` or the alternate path of the root link (``</lwm2m>;rt="oma.lwm2m"``);
    ``objects`` every object the device has (listed alone or through an instance), ``instances``
    its object instances, ``versions`` the ``ver`` of objects that give one, and
    ``content_formats`` the root link's ``ct`` (the first is the preferred one).
    """

    root: str = "/"
    objects: tuple[Path, ...] = ()
    instances: tuple[Path, ...] = ()
    versions: dict[int, str] = field(default_factory=dict, hash=False)
    content_formats: tuple[int, ...] = ()

    @property
    def preferred_content_format(self) -> int | None:
        return self.content_formats[0] if self.content_formats else None

    @property
    def object_ids(self) -> tuple[int, ...]:
        return tuple(p.object_id for p in self.objects)  # type: ignore[misc]

    def instance_ids(self, object_id: int) -> tuple[int, ...]:
        return tuple(p.instance_id for p in self.instances if p.object_id == object_id)  # type: ignore[misc]

    def version(self, object_id: int, default: str = "1.0") -> str:
        """The object's version; objects without ``ver`` are version 1.0 (LwM2M 1.1 §6.2.1)."""
        return self.versions.get(object_id, default)

    @classmethod
    def parse(cls, payload: bytes | str) -> RegistrationLinks:
        """Read a registration payload; CodecError for links that are not objects or instances."""
        links = parse_links(payload)
        roots = [link for link in links if _is_root_link(link)]
        if len(roots) > 1:
            raise CodecError(f"{len(roots)} links carry rt=\"{LWM2M_ROOT_RT}\"; there is one root")
        if not roots:
            roots = [link for link in links if link.target == "/"][:1]
        root_link = roots[0] if roots else None
        root = "/"
        formats: tuple[int, ...] = ()
        if root_link is not None:
            if not _TARGET.fullmatch(root_link.target) or not root_link.target.startswith("/") \
                    or any(c in root_link.target for c in "?#"):
                raise CodecError(f"root link <{root_link.target}> is not an absolute path")
            root = _root_prefix(root_link.target) or "/"
            formats = root_link.content_formats()
        objects: dict[Path, None] = {}
        instances: dict[Path, None] = {}
        versions: dict[int, str] = {}
        for link in links:
            if link is root_link:
                continue
            p = link_path(link.target, root)
            if p.level > 2:
                raise CodecError(f"a registration lists objects and object instances, not <{link.target}>")
            objects[Path.of(p.object_id)] = None  # type: ignore[arg-type]
            if p.is_instance:
                instances[p] = None
            ver = link.params.get("ver")
            # ver belongs on the object link; an instance link's ver counts when the object has none.
            if ver is not None and (p.is_object or p.object_id not in versions):
                versions[p.object_id] = ver  # type: ignore[index]
        return cls(root, tuple(sorted(objects)), tuple(sorted(instances)), versions, formats)

    def links(self) -> list[Link]:
        """The links of a registration payload saying the same."""
        out: list[Link] = []
        prefix = _root_prefix(self.root)
        if prefix or self.content_formats:
            params: dict[str, str | None] = {"rt": LWM2M_ROOT_RT}
            if self.content_formats:
                params["ct"] = " ".join(str(n) for n in self.content_formats)
            out.append(Link(self.root, params))
        for obj in self.objects:
            own = [p for p in self.instances if p.object_id == obj.object_id]
            ver = self.versions.get(obj.object_id)  # type: ignore[arg-type]
            if ver is not None or not own:
                out.append(Link(prefix + str(obj), {"ver": ver} if ver is not None else {}))
            out.extend(Link(prefix + str(p)) for p in own)
        return out

    def format(self) -> str:
        return format_links(self.links())


def parse_registration(payload: bytes | str) -> RegistrationLinks:
    """Same as :meth:`RegistrationLinks.parse`."""
    return RegistrationLinks.parse(payload)


def parse_discover(payload: bytes | str, root: str = "/") -> dict[Path, dict[str, str | None]]:
    """The attributes per path of a Discover answer, in the order given; CodecError for a
    target that is not an LwM2M path under ``root`` or a path listed twice."""
    out: dict[Path, dict[str, str | None]] = {}
    for link in parse_links(payload):
        p = link_path(link.target, root)
        if p in out:
            raise CodecError(f"Discover answer lists {p} twice")
        out[p] = dict(link.params)
    return out

