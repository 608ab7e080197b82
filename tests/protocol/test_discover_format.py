"""A Discover answer that is not link-format is the device's error, said as such."""

from __future__ import annotations

import pytest
from aiocoap import Code, Message
from aiocoap.numbers.contentformat import ContentFormat as CF

from lwm2m_server.protocol.errors import DeviceError
from lwm2m_server.protocol.requests import DiscoverRequest


@pytest.mark.parametrize("content_format, said", [(None, "no Content-Format"),
                                                  (0, "Content-Format 0"),
                                                  (110, "Content-Format 110")])
async def test_discover_answer_in_another_content_format_is_a_device_error(server, clients,
                                                                           content_format, said):
    c = await clients("disc")
    await c.register(server.coap_port)

    def discover(key):
        msg = Message(code=Code.CONTENT, payload=b"</3/0/0>,</3/0/1>")
        if content_format is not None:
            msg.opt.content_format = CF(content_format)
        return msg

    c._discover = discover
    with pytest.raises(DeviceError, match=f"{said}; a Discover answer must be link-format"):
        await server.devices.send("disc", DiscoverRequest("/3/0"))


async def test_discover_answer_in_link_format_still_parses(server, clients):
    c = await clients("disc-ok")
    await c.register(server.coap_port)
    r = await server.devices.send("disc-ok", DiscoverRequest("/3/0"))
    assert r.links
