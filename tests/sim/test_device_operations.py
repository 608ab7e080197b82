"""Register, Read, Write, Execute, Discover, Create, Delete and De-register against the peer."""

from __future__ import annotations

from aiocoap.numbers.codes import Code

from .peer import Peer


async def test_device_registers_with_endpoint_lifetime_binding_and_object_links(peer: Peer, make_device):
    await make_device("reg-1", lifetime=120, binding="U")
    reg = peer.devices["reg-1"]
    assert reg.query["lt"] == "120"
    assert reg.query["b"] == "U"
    assert reg.query["lwm2m"] == "1.1"
    assert '</>;rt="oma.lwm2m";ct=112' in reg.links
    for link in ("</3/0>", "</5/0>", "</9/0>", "</33100/0>", "</1/0>", "</4/0>"):
        assert link in reg.links
    assert "</0/0>" not in reg.links


async def test_read_single_resource_answers_text(peer: Peer, make_device):
    await make_device("r-1", firmware_version="2.3.4")
    resp = await peer.request("r-1", Code.GET, "/3/0/3")
    assert resp.code == Code.CONTENT
    assert resp.opt.content_format == 0
    assert resp.payload == b"2.3.4"


async def test_read_unknown_object_and_resource_answer_not_found(peer: Peer, make_device):
    await make_device("r-2")
    assert (await peer.request("r-2", Code.GET, "/77")).code == Code.NOT_FOUND
    assert (await peer.request("r-2", Code.GET, "/3/0/99")).code == Code.NOT_FOUND
    assert (await peer.request("r-2", Code.GET, "/3/7")).code == Code.NOT_FOUND


async def test_security_object_is_unauthorized_for_the_server(peer: Peer, make_device):
    await make_device("r-3")
    resp = await peer.request("r-3", Code.GET, "/0/0")
    assert resp.code == Code.UNAUTHORIZED


async def test_write_text_lifetime_triggers_update_with_new_lifetime(peer: Peer, make_device):
    await make_device("w-1", lifetime=300)
    resp = await peer.request("w-1", Code.PUT, "/1/0/1", b"60", ct=0)
    assert resp.code == Code.CHANGED
    await peer.wait_for(lambda: peer.devices["w-1"].updates >= 1)
    assert peer.devices["w-1"].update_queries[-1]["lt"] == "60"
    assert (await peer.request("w-1", Code.GET, "/1/0/1")).payload == b"60"


async def test_write_refuses_read_only_resource_and_bad_values(peer: Peer, make_device):
    await make_device("w-2")
    assert (await peer.request("w-2", Code.PUT, "/3/0/0", b"x", ct=0)).code == Code.METHOD_NOT_ALLOWED
    bad = await peer.request("w-2", Code.PUT, "/1/0/1", b"abc", ct=0)
    assert bad.code == Code.BAD_REQUEST
    assert (await peer.request("w-2", Code.PUT, "/1/0/1", b"-5", ct=0)).code == Code.BAD_REQUEST
    assert (await peer.request("w-2", Code.PUT, "/1/0/1", b"5")).code == Code.BAD_REQUEST
    assert (await peer.request("w-2", Code.PUT, "/1/0/1", b"5", ct=9999)).code == Code.UNSUPPORTED_CONTENT_FORMAT
    assert (await peer.request("w-2", Code.GET, "/1/0/1")).payload == b"300"


async def test_execute_run_computes_an_inference(peer: Peer, make_device):
    dev = await make_device("x-1")
    resp = await peer.request("x-1", Code.POST, "/33100/0/8")
    assert resp.code == Code.CHANGED
    assert (await peer.request("x-1", Code.GET, "/33100/0/4")).payload == b"1"
    assert (await peer.request("x-1", Code.GET, "/33100/0/6")).payload == b"1"
    resp = await peer.request("x-1", Code.POST, "/33100/0/8", b"0='0,0,0,0'")
    assert resp.code == Code.CHANGED
    assert dev.model.count == 2
    bad = await peer.request("x-1", Code.POST, "/33100/0/8", b"0='a,b'")
    assert bad.code == Code.BAD_REQUEST


async def test_execute_on_non_executable_resource_is_refused(peer: Peer, make_device):
    await make_device("x-2")
    resp = await peer.request("x-2", Code.POST, "/3/0/0")
    assert resp.code == Code.METHOD_NOT_ALLOWED


async def test_reboot_registers_again(peer: Peer, make_device):
    await make_device("x-3")
    assert (await peer.request("x-3", Code.POST, "/3/0/4")).code == Code.CHANGED
    await peer.wait_for(lambda: peer.devices["x-3"].registered == 2)


async def test_discover_lists_instances_resources_and_attributes(peer: Peer, make_device):
    await make_device("d-1")
    assert (await peer.request("d-1", Code.PUT, "/3/0/9", query=("pmin=10", "gt=50"))).code == Code.CHANGED
    resp = await peer.request("d-1", Code.GET, "/3", accept=40)
    assert resp.code == Code.CONTENT and resp.opt.content_format == 40
    text = resp.payload.decode()
    assert text.startswith("</3>")
    assert "</3/0>" in text and "</3/0/11>;dim=1" in text and "</3/0/9>;pmin=10;gt=50" in text
    assert "</3/0/4>" in text


async def test_write_attributes_refuses_bad_attributes(peer: Peer, make_device):
    await make_device("a-1")
    for q in (("pmin=x",), ("foo=1",), ("pmin=10", "pmax=5"), ("gt=1",)):
        path = "/3/0" if q == ("gt=1",) else "/3/0/9"
        assert (await peer.request("a-1", Code.PUT, path, query=q)).code == Code.BAD_REQUEST, q
    assert (await peer.request("a-1", Code.PUT, "/3/0/0", query=("st=1",))).code == Code.BAD_REQUEST


async def test_create_and_delete_access_control_instances(peer: Peer, make_device):
    dev = await make_device("c-1")
    from lwm2m_server.codecs import ContentFormat
    from lwm2m_server.codecs import codec_for
    from lwm2m_server.model import ObjectInstance, SingleResource, ResourceType
    node = ObjectInstance.of(None, SingleResource(0, 3, ResourceType.INTEGER),
                             SingleResource(1, 0, ResourceType.INTEGER),
                             SingleResource(3, 1, ResourceType.INTEGER))
    from lwm2m_server.model import Path
    payload = codec_for(ContentFormat.SENML_JSON).encode(node, Path.of(2, 0), dev.registry)
    resp = await peer.request("c-1", Code.POST, "/2", payload, ct=110)
    assert resp.code == Code.CREATED
    assert resp.opt.location_path == ("2", "0")
    assert 0 in dev.objects[2].data
    assert (await peer.request("c-1", Code.DELETE, "/2/0")).code == Code.DELETED
    assert (await peer.request("c-1", Code.DELETE, "/2/0")).code == Code.NOT_FOUND
    assert (await peer.request("c-1", Code.DELETE, "/3/0")).code == Code.METHOD_NOT_ALLOWED


async def test_stop_deregisters(peer: Peer, make_device):
    dev = await make_device("s-1")
    await dev.stop()
    assert "s-1" not in peer.devices
    assert ("deregister", "s-1") in peer.events


async def test_update_is_sent_before_the_lifetime_runs_out(peer: Peer, make_device):
    await make_device("lt-1", lifetime=2)
    await peer.wait_for(lambda: peer.devices["lt-1"].updates >= 2, timeout=5)


async def test_registration_update_trigger_sends_update(peer: Peer, make_device):
    await make_device("ut-1")
    assert (await peer.request("ut-1", Code.POST, "/1/0/8")).code == Code.CHANGED
    await peer.wait_for(lambda: peer.devices["ut-1"].updates >= 1)


async def test_create_of_two_instances_is_all_or_nothing(peer: Peer, make_device):
    dev = await make_device("c-2")
    from lwm2m_server.codecs import codec_for
    from lwm2m_server.model import LwM2mObject, ObjectInstance, Path, ResourceType, SingleResource
    ok = ObjectInstance.of(5, SingleResource(0, 3, ResourceType.INTEGER),
                           SingleResource(1, 0, ResourceType.INTEGER),
                           SingleResource(3, 1, ResourceType.INTEGER))
    bad = ObjectInstance.of(6, SingleResource(0, 3, ResourceType.INTEGER),
                            SingleResource(9, 1, ResourceType.INTEGER))  # no resource 9 in object 2
    payload = codec_for(11542).encode(LwM2mObject.of(2, ok, bad), Path.of(2), dev.registry)
    resp = await peer.request("c-2", Code.POST, "/2", payload, ct=11542)
    assert resp.code == Code.NOT_FOUND
    assert dev.objects[2].data == {}


async def test_reboot_can_come_back_from_a_new_port(peer: Peer, make_device):
    dev = await make_device("x-4", new_port_on_reboot=True)
    port = dev.port
    assert (await peer.request("x-4", Code.POST, "/3/0/4")).code == Code.CHANGED
    await peer.wait_for(lambda: peer.devices["x-4"].registered == 2)
    assert dev.port != port
    assert peer.devices["x-4"].remote.hostinfo.endswith(f":{dev.port}")
    assert (await peer.request("x-4", Code.GET, "/3/0/3")).code == Code.CONTENT


async def test_bad_paths_and_unsupported_methods_are_refused_with_a_message(peer: Peer, make_device):
    await make_device("bad-1")
    resp = await peer.request("bad-1", Code.GET, "/3/zero")
    assert resp.code == Code.BAD_REQUEST and b"not a number" in resp.payload
    resp = await peer.request("bad-1", Code.FETCH, "/3/0")
    assert resp.code == Code.METHOD_NOT_ALLOWED and resp.payload
    resp = await peer.request("bad-1", Code.PUT, "/1/0/1")
    assert resp.code == Code.BAD_REQUEST


async def test_update_answered_not_found_makes_the_device_register_again(peer: Peer, make_device):
    await make_device("nf-1", lifetime=2)
    reg = peer.devices["nf-1"]
    del peer.by_location[reg.location]  # the server lost its registrations
    await peer.wait_for(lambda: peer.devices["nf-1"].registered == 2, timeout=5)
