"""A minimal Foxglove WebSocket client for tests (the `websockets` package, protocol
``foxglove.sdk.v1``): it reads the server's ``advertise`` ops, subscribes to channels by topic and
decodes what arrives: JSON channels with ``json``, protobuf channels with Google's protobuf
runtime built from the FileDescriptorSet the server advertises (so a message is read the way
Foxglove reads it, not with the encoder's own classes).

Binary frames of the protocol: ``0x01`` message data = opcode (1 byte), subscription id (uint32
LE), log time (uint64 LE ns), payload.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
from typing import Any

import websockets
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.json_format import MessageToDict

SUBPROTOCOL = "foxglove.sdk.v1"
MESSAGE_DATA = 0x01


def protobuf_decoder(schema_name: str, schema_b64: str):
    """A function bytes -> dict for a protobuf channel, from its advertised FileDescriptorSet."""
    files = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(schema_b64)).file
    pool = descriptor_pool.DescriptorPool()
    pending = list(files)
    while pending:  # add each file after its dependencies
        progress = False
        for proto in list(pending):
            try:
                pool.Add(proto)
            except TypeError:
                continue
            pending.remove(proto)
            progress = True
        if not progress:
            raise ValueError(f"cannot resolve the descriptors of {schema_name}")
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(schema_name))

    def decode(payload: bytes) -> dict[str, Any]:
        msg = cls.FromString(payload)
        out = MessageToDict(msg, preserving_proto_field_name=True)
        out["__proto__"] = msg
        return out

    return decode


class FoxgloveClient:
    """``async with FoxgloveClient(url) as client``: see the module docstring."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: Any = None
        self.server_info: dict[str, Any] = {}
        self.channels: dict[str, dict[str, Any]] = {}  # topic -> advertised channel
        self._subs: dict[int, dict[str, Any]] = {}  # subscription id -> channel
        self._next_sub = 1

    async def __aenter__(self) -> FoxgloveClient:
        self.ws = await websockets.connect(self.url, subprotocols=[SUBPROTOCOL], max_size=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    def _on_text(self, text: str) -> None:
        op = json.loads(text)
        if op["op"] == "serverInfo":
            self.server_info = op
        elif op["op"] == "advertise":
            for channel in op["channels"]:
                self.channels[channel["topic"]] = channel
        elif op["op"] == "unadvertise":
            gone = set(op["channelIds"])
            self.channels = {t: c for t, c in self.channels.items() if c["id"] not in gone}

    async def wait_for_channels(self, topics: list[str], timeout: float) -> dict[str, dict]:
        """Read control messages until every topic in ``topics`` is advertised."""
        end = time.monotonic() + timeout
        while not all(t in self.channels for t in topics):
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"not advertised within {timeout} s: "
                    f"{sorted(set(topics) - set(self.channels))}; advertised: "
                    f"{sorted(self.channels)}"
                )
            try:
                frame = await asyncio.wait_for(self.ws.recv(), left)
            except TimeoutError:
                continue
            if isinstance(frame, str):
                self._on_text(frame)
        return {t: self.channels[t] for t in topics}

    async def subscribe(self, topics: list[str]) -> None:
        subscriptions = []
        for topic in topics:
            channel = dict(self.channels[topic])
            if channel["encoding"] == "json":
                channel["decode"] = lambda payload: json.loads(payload)
            else:
                channel["decode"] = protobuf_decoder(channel["schemaName"], channel["schema"])
            self._subs[self._next_sub] = channel
            subscriptions.append({"id": self._next_sub, "channelId": channel["id"]})
            self._next_sub += 1
        await self.ws.send(json.dumps({"op": "subscribe", "subscriptions": subscriptions}))

    async def receive(
        self, topics: list[str], count: int | dict[str, int], timeout: float
    ) -> dict[str, list[tuple[int, Any]]]:
        """(log time ns, decoded message) per topic until each topic has ``count`` messages
        (one number for all, or per topic)."""
        got: dict[str, list[tuple[int, Any]]] = {t: [] for t in topics}
        wanted = count if isinstance(count, dict) else dict.fromkeys(topics, count)
        end = time.monotonic() + timeout
        while any(len(v) < wanted.get(t, 1) for t, v in got.items()):
            left = end - time.monotonic()
            if left <= 0:
                counts = {t: len(v) for t, v in got.items()}
                raise TimeoutError(f"after {timeout} s received {counts}")
            try:
                frame = await asyncio.wait_for(self.ws.recv(), left)
            except TimeoutError:
                continue
            if isinstance(frame, str):
                self._on_text(frame)
                continue
            if frame[0] != MESSAGE_DATA:
                continue
            sub_id, log_time = struct.unpack_from("<IQ", frame, 1)
            channel = self._subs.get(sub_id)
            if channel is None or channel["topic"] not in got:
                continue
            got[channel["topic"]].append((log_time, channel["decode"](frame[13:])))
        return got
