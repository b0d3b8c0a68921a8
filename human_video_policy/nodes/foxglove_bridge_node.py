"""Foxglove WebSocket bridge: every topic of the running graph, live in Foxglove.

Every ``discovery_period_s`` the node lists the graph's topics and subscribes to each new one
whose name matches ``include`` and not ``exclude`` (regular expressions) and that has a
publisher, with a QoS that matches its publishers (sensor-data QoS for images, camera info and
hand keypoints; reliable and/or transient local only when every publisher offers it). Messages
go to :class:`human_video_policy.viz.foxglove_bridge.FoxgloveBridge`, which converts them to
Foxglove schemas (camera images, hand-keypoint overlays and 3D hands, named joint states and
action chunks; other types as JSON) and serves them on ``ws://<host>:<port>`` (127.0.0.1:8765 by
default). Open Foxglove -> "Open connection" -> "Foxglove WebSocket" -> that URL
(docs/viewing.md).

``hvp view live`` runs this node; ``hvp launch view`` starts it beside any running graph.
"""

from __future__ import annotations

import importlib
import re
import sys
from typing import Any

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from human_video_policy.errors import ConfigError
from human_video_policy.nodes.base import DiagnosticsReport, HvpNode, Level, run_node
from human_video_policy.validation import check_int_range, check_range
from human_video_policy.viz.foxglove_bridge import DEFAULT_HOST, DEFAULT_PORT, FoxgloveBridge
from human_video_policy.viz.foxglove_convert import DEFAULT_MAX_ARRAY, choose_qos


def _check_regex(name: str, value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ConfigError(
            f"{name}={value!r} is invalid: not a regular expression ({exc})"
        ) from None
    return value


def message_class(ros_type: str) -> Any:
    """``pkg/msg/Name`` -> the rclpy message class (ImportError/AttributeError if unknown)."""
    package, kind, name = ros_type.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


class FoxgloveBridgeNode(HvpNode):
    """Subscribes to the graph's topics and serves them to Foxglove; see the module docstring."""

    default_name = "foxglove_bridge"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        host = self.param(
            "host",
            DEFAULT_HOST,
            "Address the WebSocket server binds (127.0.0.1: this machine only; 0.0.0.0: every "
            "interface, unauthenticated).",
        )
        port = self.param(
            "port",
            DEFAULT_PORT,
            "WebSocket port (0 = any free port, logged at start).",
            lambda n, v: check_int_range(n, v, 0, 65535),
        )
        self.include = re.compile(
            self.param("include", ".*", "Bridge topics whose name matches (regex).", _check_regex)
        )
        self.exclude = re.compile(
            self.param(
                "exclude",
                "^/parameter_events$",
                "Never bridge topics whose name matches (regex; empty = none).",
                _check_regex,
            )
            or "(?!)"
        )
        generic = self.param(
            "generic",
            True,
            "Forward topics of types without a Foxglove conversion as JSON of their fields.",
        )
        max_array = self.param(
            "max_array",
            DEFAULT_MAX_ARRAY,
            "Generic JSON: arrays longer than this are cut (their length is sent).",
            lambda n, v: check_int_range(n, v, 1, 1_000_000),
        )
        period = self.param(
            "discovery_period_s",
            1.0,
            "How often the graph's topics are listed (s).",
            lambda n, v: check_range(n, v, 0.05, 60.0),
        )
        self.bridge = FoxgloveBridge(
            host, port, name=self.get_name(), generic=generic, max_array=max_array
        )
        self._bridge_subs: dict[str, Any] = {}
        self._skipped: dict[str, str] = {}
        self.enable_diagnostics()
        self.create_wall_timer(period, self.discover)
        self.discover()
        self.get_logger().info(
            f"Foxglove WebSocket server on {self.bridge.url}: in Foxglove, Open connection -> "
            f"Foxglove WebSocket -> {self.bridge.url}"
        )

    # -- discovery (spin thread) -----------------------------------------------------------
    def discover(self) -> None:
        self.bridge.resend_latched()
        for topic, types in self.get_topic_names_and_types():
            if topic in self._bridge_subs or topic in self._skipped:
                continue
            if not self.include.search(topic) or self.exclude.search(topic):
                continue
            if len(types) != 1:
                self._skip(topic, f"{len(types)} types on one topic: {types}")
                continue
            ros_type = types[0]
            if not self.bridge.supports(ros_type):
                self._skip(topic, f"type {ros_type} is not bridged (generic:=false)")
                continue
            publishers = [
                (
                    info.qos_profile.reliability == ReliabilityPolicy.RELIABLE,
                    info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL,
                )
                for info in self.get_publishers_info_by_topic(topic)
            ]
            choice = choose_qos(ros_type, publishers)
            if choice is None:  # no publisher yet: look again next time
                continue
            try:
                msg_type = message_class(ros_type)
            except (ImportError, AttributeError, ValueError) as exc:
                self._skip(topic, f"type {ros_type} cannot be imported here ({exc})")
                continue
            qos = QoSProfile(
                history=HistoryPolicy.KEEP_LAST,
                depth=choice.depth,
                reliability=(
                    ReliabilityPolicy.RELIABLE if choice.reliable else ReliabilityPolicy.BEST_EFFORT
                ),
                durability=(
                    DurabilityPolicy.TRANSIENT_LOCAL
                    if choice.transient_local
                    else DurabilityPolicy.VOLATILE
                ),
            )
            channels = self.bridge.add_topic(topic, ros_type, latched=choice.transient_local)
            self._bridge_subs[topic] = self.create_subscription(
                msg_type, topic, lambda msg, t=topic: self.bridge.publish(t, msg), qos
            )
            self.get_logger().info(f"bridging {topic} ({ros_type}) -> {', '.join(channels)}")

    def _skip(self, topic: str, reason: str) -> None:
        self._skipped[topic] = reason
        self.get_logger().info(f"not bridging {topic}: {reason}")

    # -- reports ---------------------------------------------------------------------------
    def diagnostics_report(self) -> DiagnosticsReport:
        stats = self.bridge.topics()
        values: dict[str, Any] = {
            "url": self.bridge.url,
            "topics": len(stats),
            "skipped_topics": len(self._skipped),
            "received": sum(s.received for s in stats.values()),
            "forwarded": sum(s.forwarded for s in stats.values()),
            "errors": sum(s.errors for s in stats.values()),
        }
        for topic, s in stats.items():
            if s.forwarded:
                values[f"{topic} convert_us"] = s.mean_convert_us
        bad = {t: s.last_error for t, s in stats.items() if s.errors}
        if bad:
            text = "; ".join(f"{t}: {e}" for t, e in bad.items())
            return DiagnosticsReport(Level.WARN, f"messages that do not convert: {text}", values)
        return DiagnosticsReport(Level.OK, f"serving {len(stats)} topics", values)

    def close(self) -> None:
        self.bridge.close()


def main(args: list[str] | None = None) -> int:
    return run_node(FoxgloveBridgeNode, args)


if __name__ == "__main__":
    sys.exit(main())
