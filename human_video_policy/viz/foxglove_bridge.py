"""A Foxglove WebSocket server fed with ROS messages (no rclpy: the node hands messages in).

:class:`FoxgloveBridge` runs the ``foxglove-sdk`` WebSocket server (Foxglove's own protocol,
``foxglove.sdk.v1``) in its own context, so a process can run several. For each ROS topic it is
told about (:meth:`FoxgloveBridge.add_topic`) it advertises the Foxglove channels of the topic's
:class:`~human_video_policy.viz.foxglove_convert.Conversion`; :meth:`FoxgloveBridge.publish`
converts a message and logs it, but only for channels some client subscribed to, so an unwatched
camera costs a dictionary look-up per frame, not a conversion.

The server binds 127.0.0.1 unless told otherwise: Foxglove on the same machine connects to
``ws://127.0.0.1:8765``; from another machine, tunnel the port (``ssh -L 8765:127.0.0.1:8765``)
rather than exposing an unauthenticated server on the network.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import foxglove
from foxglove import channels as fc
from foxglove.websocket import ServerListener

from human_video_policy.errors import ConfigError
from human_video_policy.viz.foxglove_convert import (
    DEFAULT_MAX_ARRAY,
    Conversion,
    conversion_for,
    normalize_type,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


@dataclass
class TopicStats:
    """What the bridge did with one ROS topic."""

    ros_type: str
    received: int = 0
    forwarded: int = 0
    errors: int = 0
    convert_s: float = 0.0  # total time converting + logging forwarded messages
    last_error: str = ""

    @property
    def mean_convert_us(self) -> float:
        return 1e6 * self.convert_s / self.forwarded if self.forwarded else 0.0


class _Bridged:
    """One ROS topic: its conversion and its open Foxglove channels (suffix -> channel);
    for a latched topic, its newest message (sent again to clients that subscribe later)."""

    def __init__(
        self, conversion: Conversion, channels: dict[str, Any], stats: TopicStats, latched: bool
    ) -> None:
        self.conversion = conversion
        self.channels = channels
        self.stats = stats
        self.latched = latched
        self.last: Any = None


class _Listener(ServerListener):
    """Notes the channels a client newly subscribed to (the other callbacks: the protocol's
    defaults, which do nothing)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.new_subscriptions: set[int] = set()

    def on_subscribe(self, client: Any, channel: Any) -> None:
        with self.lock:
            self.new_subscriptions.add(int(channel.id))


class FoxgloveBridge:
    """Foxglove WebSocket server + ROS-topic-to-channel bookkeeping; see the module docstring.

    ``port`` 0 picks a free port (read it back from :attr:`port`). ``generic``: topics of types
    without a dedicated conversion are forwarded as JSON of all their fields (arrays cut at
    ``max_array``); False leaves them out.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        name: str = "human_video_policy",
        generic: bool = True,
        max_array: int = DEFAULT_MAX_ARRAY,
    ) -> None:
        if not 0 <= int(port) <= 65535:
            raise ConfigError(f"port={port} is invalid: must be 0..65535")
        self.generic = generic
        self.max_array = int(max_array)
        self.context = foxglove.Context()
        self._lock = threading.Lock()
        self._topics: dict[str, _Bridged] = {}
        self._listener = _Listener()
        try:
            self.server = foxglove.start_server(
                name=name,
                host=host,
                port=int(port),
                context=self.context,
                server_listener=self._listener,
            )
        except Exception as exc:  # the SDK raises its own error type for a taken port
            raise ConfigError(
                f"cannot start the Foxglove WebSocket server on {host}:{port}: {exc} "
                "(is another bridge running? pick another port)"
            ) from exc
        self.host = host

    # -- topics -------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self.server.port)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def supports(self, ros_type: str) -> bool:
        return conversion_for(ros_type, self.generic, self.max_array) is not None

    def add_topic(self, topic: str, ros_type: str, latched: bool = False) -> list[str]:
        """Advertise the Foxglove channels of ``topic``; returns their names ([] when the type
        is not bridged). Adding a topic twice is a no-op. ``latched``: keep the newest message
        and send it again when a client subscribes (:meth:`resend_latched`), as a
        transient-local ROS subscription would."""
        ros_type = normalize_type(ros_type)
        with self._lock:
            if topic in self._topics:
                return [c.topic() for c in self._topics[topic].channels.values()]
            conversion = conversion_for(ros_type, self.generic, self.max_array)
            if conversion is None:
                return []
            metadata = {"ros_topic": topic, "ros_type": ros_type}
            channels: dict[str, Any] = {}
            for output in conversion.outputs:
                name = topic + output.suffix
                if output.is_json:
                    channels[output.suffix] = foxglove.Channel(
                        name,
                        schema=output.schema,
                        message_encoding="json",
                        context=self.context,
                        metadata=metadata,
                    )
                else:
                    channel_cls = getattr(fc, f"{output.schema.__name__}Channel")
                    channels[output.suffix] = channel_cls(
                        name, metadata=metadata, context=self.context
                    )
            self._topics[topic] = _Bridged(conversion, channels, TopicStats(ros_type), latched)
            return [c.topic() for c in channels.values()]

    def remove_topic(self, topic: str) -> None:
        with self._lock:
            bridged = self._topics.pop(topic, None)
        if bridged is not None:
            for channel in bridged.channels.values():
                channel.close()

    def topics(self) -> dict[str, TopicStats]:
        with self._lock:
            return {t: b.stats for t, b in self._topics.items()}

    # -- messages -----------------------------------------------------------------------------
    def publish(self, topic: str, msg: Any, log_time_ns: int | None = None) -> bool:
        """Convert ``msg`` of an added ``topic`` and log it to its channels; False when no
        client watches any of them (nothing converted) or the message does not convert (the
        error is counted in :meth:`topics`)."""
        bridged = self._topics.get(topic)
        if bridged is None:
            return False
        stats = bridged.stats
        stats.received += 1
        if bridged.latched:
            bridged.last = msg
        watched = {s: c for s, c in bridged.channels.items() if c.has_sinks()}
        return self._log(bridged, msg, watched, log_time_ns)

    def resend_latched(self) -> int:
        """Log the newest message of each latched topic again to the channels a client
        subscribed to since the last call; returns how many topics were sent. Call it
        periodically (the node does, every discovery period): the server's subscribe callback
        runs on the server's thread, where logging is not allowed."""
        with self._listener.lock:
            fresh = set(self._listener.new_subscriptions)
            self._listener.new_subscriptions.clear()
        if not fresh:
            return 0
        sent = 0
        with self._lock:
            topics = list(self._topics.values())
        for bridged in topics:
            if not bridged.latched or bridged.last is None:
                continue
            channels = {s: c for s, c in bridged.channels.items() if c.id() in fresh}
            if channels and self._log(bridged, bridged.last, channels, None):
                sent += 1
        return sent

    def _log(
        self, bridged: _Bridged, msg: Any, watched: dict[str, Any], log_time_ns: int | None
    ) -> bool:
        stats = bridged.stats
        if not watched:
            return False
        started = time.perf_counter()
        try:
            converted = bridged.conversion.convert(msg)
            for suffix, channel in watched.items():
                channel.log(converted[suffix], log_time=log_time_ns)
        except Exception as exc:  # a malformed message must not stop the bridge
            stats.errors += 1
            stats.last_error = f"{type(exc).__name__}: {exc}"
            return False
        stats.convert_s += time.perf_counter() - started
        stats.forwarded += 1
        return True

    def close(self) -> None:
        with self._lock:
            topics = list(self._topics)
        for topic in topics:
            self.remove_topic(topic)
        self.server.stop()

    def __enter__(self) -> FoxgloveBridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
