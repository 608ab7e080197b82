from pathlib import Path as FsPath

import pytest

from lwm2m_server.model import (
    DefinitionError,
    ObjectRegistry,
    Operations,
    ResourceType,
    default_registry,
    parse_ddf,
)
from lwm2m_server.model.registry import DEFAULT_OBJECTS_DIR, MODEL_OBJECT_ID

REFERENCE = FsPath(__file__).resolve().parents[3] / "shared" / "oma-registry"

GOOD = """<?xml version="1.0"?>
<LWM2M><Object ObjectType="MODefinition"><Name>Test</Name><ObjectID>40001</ObjectID>
<ObjectURN>urn:oma:lwm2m:x:40001</ObjectURN><LWM2MVersion>1.1</LWM2MVersion>
<ObjectVersion>1.0</ObjectVersion><MultipleInstances>Multiple</MultipleInstances>
<Mandatory>Optional</Mandatory><Resources>{items}</Resources></Object></LWM2M>"""

ITEM = """<Item ID="{id}"><Name>R{id}</Name><Operations>{ops}</Operations>
<MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory><Type>{type}</Type>
<RangeEnumeration></RangeEnumeration><Units></Units><Description>d</Description></Item>"""


def test_shipped_objects_load_with_the_model_object():
    reg = default_registry()
    assert {0, 1, 2, 3, 4, 5, 9, MODEL_OBJECT_ID} <= {o.id for o in reg}
    dev = reg.get(3)
    assert dev.name == "Device" and dev.version == "1.1" and not dev.multiple
    assert dev.resources[4].executable and dev.resources[4].type is ResourceType.NONE
    assert dev.resources[7].multiple and dev.resources[7].type is ResourceType.INTEGER
    model = reg.get(MODEL_OBJECT_ID)
    assert model.resources[3].multiple and model.resources[8].executable
    assert model.resources[9].operations == Operations.READ | Operations.WRITE


def test_all_types_parse():
    types = ["String", "Integer", "Unsigned Integer", "Float", "Boolean", "Opaque", "Time",
             "Objlnk", "Corelnk", ""]
    items = "".join(ITEM.format(id=i, ops="R" if t else "E", type=t) for i, t in enumerate(types))
    (obj,) = parse_ddf(GOOD.format(items=items))
    assert [obj.resources[i].type.value for i in range(len(types))] == [
        "string", "integer", "unsigned integer", "float", "boolean", "opaque", "time", "objlnk",
        "corelnk", "none"]


def test_unknown_type_names_file_and_element():
    with pytest.raises(DefinitionError) as e:
        parse_ddf(GOOD.format(items=ITEM.format(id=7, ops="R", type="Decimal")), source="bad.xml")
    assert e.value.source == "bad.xml"
    assert "Item[ID='7']/Type" in e.value.element and "Decimal" in str(e.value)


@pytest.mark.parametrize(
    "doc, where",
    [("<LWM2M><Object>", "line"),
     ("<Other/>", "Other"),
     ("<LWM2M></LWM2M>", "LWM2M"),
     (GOOD.format(items=ITEM.format(id="x", ops="R", type="String")), "Item[ID='x']"),
     (GOOD.format(items=ITEM.format(id=1, ops="RX", type="String")), "Operations"),
     (GOOD.format(items=ITEM.format(id=1, ops="R", type="String") * 2), "Item[ID='1']"),
     (GOOD.format(items="").replace("<Name>Test</Name>", ""), "Object[40001]/Name")],
)
def test_bad_documents_name_the_element(doc, where):
    with pytest.raises(DefinitionError) as e:
        parse_ddf(doc, source="x.xml")
    assert where in str(e.value) and "x.xml" in str(e.value)


def test_xxe_and_entity_expansion_are_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
           + GOOD.format(items=ITEM.format(id=1, ops="R", type="String")).split("?>", 1)[1]
           .replace("<Name>Test</Name>", "<Name>&x;</Name>"))
    with pytest.raises(DefinitionError) as e:
        parse_ddf(xxe, source="xxe.xml")
    assert "TOPSECRET" not in str(e.value)
    bomb = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            "<LWM2M>&b;</LWM2M>")
    with pytest.raises(DefinitionError):
        parse_ddf(bomb, source="bomb.xml")


def test_operator_folders_add_and_override_definitions(tmp_path):
    (tmp_path / "extra.xml").write_text(GOOD.format(items=ITEM.format(id=1, ops="RW", type="Float")))
    reg = ObjectRegistry.from_dirs(tmp_path)
    assert reg.get(40001).resources[1].type is ResourceType.FLOAT
    assert reg.get(3) is not None
    (tmp_path / "broken.xml").write_text("<LWM2M>")
    with pytest.raises(DefinitionError) as e:
        ObjectRegistry.from_dirs(tmp_path)
    assert "broken.xml" in str(e.value)


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="the OMA reference registry is not beside the repo")
@pytest.mark.parametrize("oid", [0, 1, 2, 3, 4, 5, 9])
def test_shipped_objects_match_the_oma_registry(oid):
    ours = ObjectRegistry(ObjectRegistry().load_dir(DEFAULT_OBJECTS_DIR)).get(oid)
    ref = ObjectRegistry(ObjectRegistry().load_dir(REFERENCE)).get(oid)
    assert (ours.name, ours.multiple, ours.mandatory) == (ref.name, ref.multiple, ref.mandatory)
    assert ours.resources, "no resources"
    for rid, r in ours.resources.items():
        # Our 1.1 definitions are the registry's newest ones less the resources added later.
        assert rid in ref.resources, f"/{oid}/x/{rid} is not in the registry"
        q = ref.resources[rid]
        assert (r.name, r.operations, r.multiple, r.mandatory, r.type) == (
            q.name, q.operations, q.multiple, q.mandatory, q.type), f"/{oid}/x/{rid}"
