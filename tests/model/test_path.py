import pytest

from lwm2m_server.model import Path, PathError, PathLevel


@pytest.mark.parametrize(
    "text, ids",
    [("/", ()), ("", ()), ("/3", (3,)), ("/3/0", (3, 0)), ("3/0/1", (3, 0, 1)),
     ("/3/0/7/2", (3, 0, 7, 2)), ("/65535", (65535,)), ("/3/0/", (3, 0))],
)
def test_parse_accepts_valid_paths(text, ids):
    assert Path.parse(text).ids == ids


@pytest.mark.parametrize(
    "text",
    ["/a", "/3//1", "/3/0/1/2/3", "/65536", "/-1", "/3/01", "/3/0x1", "/3/ 1", "/3/٣", "/3/65535"],
)
def test_parse_refuses_invalid_paths(text):
    with pytest.raises(PathError):
        Path.parse(text)


def test_str_round_trips_and_orders():
    paths = [Path.parse(p) for p in ["/3/0/7/1", "/1", "/3/0", "/3/0/7/0", "/"]]
    assert [str(p) for p in sorted(paths)] == ["/", "/1", "/3/0", "/3/0/7/0", "/3/0/7/1"]
    for p in paths:
        assert Path.parse(str(p)) == p


def test_levels_and_navigation():
    p = Path.parse("/3/0/7/1")
    assert p.level is PathLevel.RESOURCE_INSTANCE
    assert (p.object_id, p.instance_id, p.resource_id, p.resource_instance_id) == (3, 0, 7, 1)
    assert p.parent() == Path.of(3, 0, 7)
    assert p.starts_with(Path.of(3, 0)) and p.starts_with(Path()) and not p.starts_with(Path.of(3, 1))
    assert Path.of(3).child(0).is_instance
    assert p.segments() == ["3", "0", "7", "1"]
    with pytest.raises(PathError):
        Path().parent()


def test_non_integer_ids_are_refused():
    with pytest.raises(PathError):
        Path((True,))
    with pytest.raises(PathError):
        Path(("3",))  # type: ignore[arg-type]
