"""CoRE link-format: registration payloads and Discover answers, strict structure, round trips,
fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m_server.codecs import CodecError
from lwm2m_server.codecs.link_format import (
    MAX_LINK_PAYLOAD,
    Link,
    RegistrationLinks,
    format_links,
    link_path,
    parse_discover,
    parse_links,
    parse_registration,
)
from lwm2m_server.model import Path

from .tlv_text_objects import edits, mutate

P = Path.parse
REGISTRATION = '</>;rt="oma.lwm2m";ct=110, </1/0>, </3>;ver=1.1, </3/0>, </5/0>, </33100/0>'


def test_parses_a_registration_payload_into_links_in_order() -> None:
    assert parse_links(REGISTRATION) == [
        Link("/", {"rt": "oma.lwm2m", "ct": "110"}), Link("/1/0"), Link("/3", {"ver": "1.1"}),
        Link("/3/0"), Link("/5/0"), Link("/33100/0"),
    ]


def test_parameters_keep_their_order_and_flag_parameters_have_no_value() -> None:
    [link] = parse_links('</sensors/temp>;if="sensor";obs;rt="temperature-c";sz=1234;title="x y"')
    assert list(link.params.items()) == [("if", "sensor"), ("obs", None), ("rt", "temperature-c"),
                                         ("sz", "1234"), ("title", "x y")]


def test_quoted_values_may_hold_separators_and_escapes() -> None:
    [link] = parse_links(r'</a>;title="one, two; \"three\" \\ four"')
    assert link.params["title"] == 'one, two; "three" \\ four'
    assert parse_links(format_links([link])) == [link]


@pytest.mark.parametrize("payload", [
    b"</1/0>,</3/0>",
    b"  </1/0> ,\n</3/0>  \r\n",
    b"</1/0>\n,\n</3/0>",
    b"</1/0>\t;\tver=1.0 ,</3/0>",
])
def test_whitespace_and_newlines_between_links_are_tolerated(payload: bytes) -> None:
    assert [link.target for link in parse_links(payload)] == ["/1/0", "/3/0"]


def test_empty_payload_has_no_links() -> None:
    assert parse_links(b"") == [] and parse_links(" \n") == []


@pytest.mark.parametrize(("payload", "fragment", "offset"), [
    ("</1/0", "unterminated '<'", 0),
    ("</1/0>,</3/0", "unterminated '<'", 7),
    ('</1>;rt="oma', "unterminated quoted string", 8),
    ('</1>;rt="a\\', "unterminated quoted string", 8),
    ("</1>;rt=", "no value", 8),
    ("</1>;=3", "parameter name", 5),
    ("</1>;", "parameter name", 5),
    ("</1> x", "expected ';' or ','", 5),
    ("</1>,", "trailing ','", 4),
    (",</1>", "expected '<'", 0),
    ("</1>,,</2>", "expected '<'", 5),
    ("/1,/2", "expected '<'", 0),
    ("<>", "invalid link target", 1),
    ("</a b>", "invalid link target", 1),
    ("<</1>", "invalid link target", 1),
    ('</1>;rt="a\x01b"', "control character", 10),
    ("</1>;ct=1;ct=2", "duplicate parameter", 10),
    ("</1>;rt=a\"b\"", "expected ';' or ','", 9),
])
def test_structural_errors_name_the_offset(payload: str, fragment: str, offset: int) -> None:
    with pytest.raises(CodecError) as e:
        parse_links(payload)
    assert fragment in e.value.message
    assert e.value.where == f"offset {offset}"


@pytest.mark.parametrize("payload", [
    "</3/0>;pmin", "</3/0>;pmin=-1", "</3/0>;pmax=1.5", "</3/0/7>;gt=abc", "</3/0/7>;st=\"\"",
    "</3>;ver=1", "</3>;ver=v1.1", '</>;ct="110 x"', "</>;ct=70000", "</3/0/7>;dim=70000",
    "</3>;epmin=x",
])
def test_lwm2m_attributes_with_bad_values_are_refused(payload: str) -> None:
    with pytest.raises(CodecError, match="attribute"):
        parse_links(payload)


def test_invalid_utf8_is_refused_with_its_offset() -> None:
    with pytest.raises(CodecError) as e:
        parse_links(b'</1>;title="\xff"')
    assert "UTF-8" in e.value.message and e.value.where == "offset 12"


def test_payloads_over_the_size_bound_are_refused() -> None:
    big = ",".join(["</3/0>"] * (MAX_LINK_PAYLOAD // 7 + 1))
    with pytest.raises(CodecError, match="bound"):
        parse_links(big)
    with pytest.raises(CodecError, match="bound"):
        parse_links(big.encode())


def test_formats_links_quoting_only_where_needed() -> None:
    links = [Link("/", {"rt": "oma.lwm2m", "ct": "60 110"}), Link("/3", {"ver": "1.1"}),
             Link("/3/0/7", {"pmin": "10", "obs": None}), Link("/x", {"title": ""})]
    assert format_links(links) == '</>;rt="oma.lwm2m";ct="60 110",</3>;ver=1.1,</3/0/7>;pmin=10;obs,</x>;title=""'


def test_format_refuses_targets_and_names_that_cannot_be_written() -> None:
    with pytest.raises(CodecError):
        format_links([Link("/a>b")])
    with pytest.raises(CodecError):
        format_links([Link("/a", {"bad name": None})])


# --- registration ------------------------------------------------------------------------------

def test_registration_gives_objects_instances_versions_and_preferred_format() -> None:
    reg = parse_registration(REGISTRATION)
    assert reg.root == "/"
    assert reg.objects == (P("/1"), P("/3"), P("/5"), P("/33100"))
    assert reg.instances == (P("/1/0"), P("/3/0"), P("/5/0"), P("/33100/0"))
    assert reg.versions == {3: "1.1"}
    assert reg.version(3) == "1.1" and reg.version(5) == "1.0"
    assert reg.content_formats == (110,) and reg.preferred_content_format == 110
    assert reg.object_ids == (1, 3, 5, 33100)
    assert reg.instance_ids(3) == (0,)


def test_registration_with_an_alternate_root_path_strips_it() -> None:
    reg = RegistrationLinks.parse('</lwm2m>;rt="oma.lwm2m";ct="112 110",</lwm2m/1/0>,</lwm2m/3>;ver=1.1,'
                                  '</lwm2m/3/0>')
    assert reg.root == "/lwm2m"
    assert reg.instances == (P("/1/0"), P("/3/0"))
    assert reg.content_formats == (112, 110) and reg.preferred_content_format == 112


def test_registration_without_root_link_has_no_preferred_format() -> None:
    reg = parse_registration("</1/0>,</2>,</3/0>,</3/1>")
    assert reg.root == "/" and reg.preferred_content_format is None
    assert reg.objects == (P("/1"), P("/2"), P("/3"))
    assert reg.instance_ids(3) == (0, 1) and reg.instance_ids(2) == ()


def test_registration_root_link_is_found_by_rt_among_several_values() -> None:
    reg = parse_registration('</1/0>,</>;rt="core.rd oma.lwm2m";ct=11542')
    assert reg.preferred_content_format == 11542


@pytest.mark.parametrize(("payload", "fragment"), [
    ("</3/0/1>", "objects and object instances"),
    ("</3/0/1/2>", "objects and object instances"),
    ("</3/x>", "not an LwM2M"),
    ("</3/>", "not an LwM2M"),
    ("<3/0>", "not an LwM2M"),
    ("</03/0>", "leading zero"),
    ("</3/65535>", "reserved"),
    ("</3/70000>", "outside"),
    ('</lwm2m>;rt="oma.lwm2m",</3/0>', "outside the root"),
    ('</a>;rt="oma.lwm2m",</b>;rt="oma.lwm2m"', "one root"),
    ('<http://x/?q>;rt="oma.lwm2m"', "absolute path"),
    ("</1/0>,</3/0", "unterminated"),
])
def test_registration_refuses_links_that_are_not_lwm2m_paths(payload: str, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        parse_registration(payload)


def test_registration_formats_back_to_an_equivalent_payload() -> None:
    for payload in (REGISTRATION, '</lwm2m>;rt="oma.lwm2m",</lwm2m/1/0>,</lwm2m/2>', "</1/0>,</3/0>"):
        reg = parse_registration(payload)
        assert parse_registration(reg.format()) == reg


# --- Discover ----------------------------------------------------------------------------------

def test_discover_answer_gives_attributes_per_path() -> None:
    answer = parse_discover('</3/0>;pmin=10;pmax=60,</3/0/1>,</3/0/7>;dim=2;gt=3.5;lt=-1;st=0.5,'
                            '</3/0/7/0>;epmin=1;epmax=5')
    assert list(answer) == [P("/3/0"), P("/3/0/1"), P("/3/0/7"), P("/3/0/7/0")]
    assert answer[P("/3/0")] == {"pmin": "10", "pmax": "60"}
    assert answer[P("/3/0/7")] == {"dim": "2", "gt": "3.5", "lt": "-1", "st": "0.5"}
    assert answer[P("/3/0/1")] == {}


def test_discover_answer_under_an_alternate_root() -> None:
    assert list(parse_discover("</lwm2m/3/0/1>", root="/lwm2m")) == [P("/3/0/1")]


@pytest.mark.parametrize("payload", ["</3/0>,</3/0>", "</sensors>", "</3/0>;dim=x"])
def test_discover_answer_refuses_duplicates_and_non_lwm2m_targets(payload: str) -> None:
    with pytest.raises(CodecError):
        parse_discover(payload)


def test_link_path_of_an_object_instance() -> None:
    assert link_path("/3/0") == P("/3/0") and Link("/3/0/7/1").path == P("/3/0/7/1")


# --- properties ----------------------------------------------------------------------------------

_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789_.-!#$&+^`|~", min_size=1, max_size=8).filter(
    lambda n: n not in ("pmin", "pmax", "epmin", "epmax", "dim", "gt", "lt", "st", "ver", "ct"))
_values = st.one_of(st.none(), st.text(st.characters(min_codepoint=0x20, exclude_characters="\x7f"),
                                       max_size=12))
_targets = st.lists(st.integers(0, 65534), min_size=1, max_size=4).map(lambda ids: "/" + "/".join(map(str, ids)))
_links = st.builds(Link, _targets, st.dictionaries(_names, _values, max_size=4))


@settings(max_examples=200, deadline=None)
@given(st.lists(_links, max_size=6))
def test_any_links_round_trip_through_format_and_parse(links: list[Link]) -> None:
    text = format_links(links)
    assert parse_links(text) == links
    assert [list(link.params) for link in parse_links(text)] == [list(link.params) for link in links]


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=80),
                 st.text(st.sampled_from('</>;,="\\ \n0123ab.rtpminctver'), max_size=60)))
def test_fuzzed_payloads_raise_only_codec_error(payload) -> None:
    for parse in (parse_links, parse_registration, parse_discover):
        try:
            parse(payload)
        except CodecError:
            pass


@settings(max_examples=300, deadline=None)
@given(edits(st.sampled_from('</>;,="\\ x1')))
def test_mutated_registration_payloads_raise_only_codec_error(changes) -> None:
    try:
        parse_registration("".join(mutate(REGISTRATION, changes)))
    except CodecError:
        pass
