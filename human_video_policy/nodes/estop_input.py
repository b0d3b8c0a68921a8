"""/safety/estop as every node that must obey it listens to it: from any publisher's QoS.

Why three subscriptions: a DDS subscription only connects to publishers whose QoS is
compatible with its own. A transient-local subscription (needed so that a latched e-stop
reaches a node started later) ignores every volatile publisher, which is what
``ros2 topic pub`` and most nodes use; a reliable subscription ignores best-effort publishers.
So :class:`EstopInput` subscribes

- reliable + transient local (depth 1): the latched value of transient-local publishers;
- reliable + volatile: every reliable publisher, delivered reliably;
- best effort + volatile: every publisher at all (best-effort ones included).

A message usually arrives on several of them: a copy is recognised by its source time stamp
and sequence number and handled once. Any ``true`` is acted on at once (it latches
downstream). The input's current value (which gates an e-stop reset) follows the samples in the
order they arrive, except that a ``false`` whose source stamp is older than the newest sample
seen in the last REORDER_WINDOW_S is ignored (another subscription delivered it late). The
window is short on purpose: source stamps come from each publisher's clock, so a publisher
whose clock runs ahead can delay a release by at most that window, never block it. The volatile
subscriptions keep 100 samples, so a flood of ``false`` does not push a ``true`` out of a queue
before it is read.

Once a second :meth:`EstopInput.publishers` lists the publishers on /safety/estop and flags
any that none of the three subscriptions can match (a type other than std_msgs/Bool, or QoS
no subscription accepts, e.g. a deadline or liveliness the publisher cannot meet): nodes report
them, and a missing publisher, on /diagnostics.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSCompatibility,
    QoSProfile,
    ReliabilityPolicy,
    qos_check_compatible,
)
from std_msgs.msg import Bool

ESTOP_TOPIC = "/safety/estop"
REORDER_WINDOW_S = 0.5
ESTOP_TYPE = "std_msgs/msg/Bool"

ESTOP_SUBSCRIPTION_PROFILES: tuple[tuple[str, QoSProfile], ...] = (
    (
        "reliable_transient_local",
        QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        ),
    ),
    (
        "reliable_volatile",
        QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=100,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        ),
    ),
    (
        "best_effort_volatile",
        QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=100,
            reliability=ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.VOLATILE,
        ),
    ),
)


@dataclass(frozen=True)
class EstopPublishers:
    """Who publishes /safety/estop now: ``count`` publishers, of which ``unmatched`` (one text
    per publisher: node and why) reach none of the e-stop subscriptions."""

    count: int
    unmatched: tuple[str, ...]

    @property
    def matched(self) -> int:
        return self.count - len(self.unmatched)


class EstopInput:
    """The e-stop input of ``node``: calls ``on_change(asserted)`` whenever its value changes
    (and on every ``true``, which latches downstream); see the module docstring."""

    def __init__(self, node: Node, on_change: Callable[[bool], None]) -> None:
        self._node = node
        self._on_change = on_change
        self._lock = threading.Lock()
        self._value = False
        self._newest_stamp_ns = -1
        self._newest_received_s = -float("inf")
        self.duplicates = 0
        self._seen: deque[tuple[int, object, bool]] = deque(maxlen=64)
        self.messages = 0
        self.incompatible_events = 0
        ignore_incompatible = SubscriptionEventCallbacks(
            incompatible_qos=self._on_incompatible, incompatible_type=self._on_incompatible
        )
        self._subscriptions = [
            node.create_subscription(
                Bool, ESTOP_TOPIC, self._on_message, profile, event_callbacks=ignore_incompatible
            )
            for _, profile in ESTOP_SUBSCRIPTION_PROFILES
        ]

    @property
    def asserted(self) -> bool:
        with self._lock:
            return self._value

    def _on_incompatible(self, _status: object) -> None:
        # Expected: each publisher is incompatible with some of the three subscriptions.
        # Publishers matching none are found by publishers(), so nothing is logged here.
        self.incompatible_events += 1

    def _on_message(self, msg: Bool, info: dict) -> None:
        # Two parameters and no default: rclpy passes the MessageInfo only to a callback that
        # cannot be called with the message alone.
        asserted = bool(msg.data)
        stamp_ns = int(info.get("source_timestamp") or 0) if isinstance(info, dict) else 0
        sequence = info.get("publication_sequence_number") if isinstance(info, dict) else None
        key = (stamp_ns, sequence, asserted)
        now = time.monotonic()
        with self._lock:
            if stamp_ns and key in self._seen:
                self.duplicates += 1
                return  # the same sample, delivered by another of the subscriptions
            self._seen.append(key)
            self.messages += 1
            reordered = (
                not asserted
                and stamp_ns < self._newest_stamp_ns
                and now - self._newest_received_s < REORDER_WINDOW_S
            )
            if reordered:
                return  # an older release seen after a newer sample: the newer one decides
            self._newest_stamp_ns, self._newest_received_s = stamp_ns, now
            changed = asserted != self._value
            self._value = asserted
        if asserted or changed:
            self._on_change(asserted)

    def publishers(self) -> EstopPublishers:
        """The publishers on /safety/estop now and those none of the subscriptions match."""
        infos = self._node.get_publishers_info_by_topic(ESTOP_TOPIC)
        unmatched: list[str] = []
        for info in infos:
            who = f"{info.node_namespace.rstrip('/')}/{info.node_name}"
            if info.topic_type != ESTOP_TYPE:
                unmatched.append(f"{who}: type {info.topic_type}, expected {ESTOP_TYPE}")
                continue
            reasons = []
            for _, profile in ESTOP_SUBSCRIPTION_PROFILES:
                compatibility, reason = qos_check_compatible(info.qos_profile, profile)
                if compatibility != QoSCompatibility.ERROR:
                    break
                reasons.append(reason)
            else:
                unmatched.append(f"{who}: incompatible QoS ({reasons[-1]})")
        return EstopPublishers(len(infos), tuple(unmatched))

    def diagnostics(self, publisher_required: bool) -> tuple[dict[str, object], str]:
        """Key/values for /diagnostics and a warning ("" when none): a publisher no
        subscription matches, or (when ``publisher_required``) no matched publisher at all."""
        try:
            publishers = self.publishers()
        except Exception as exc:  # a graph query must never stop a controller
            return {"estop_publishers": "unknown"}, f"cannot list e-stop publishers: {exc}"
        values: dict[str, object] = {
            "estop_publishers": publishers.count,
            "estop_publishers_matched": publishers.matched,
            "estop_publishers_unmatched": "; ".join(publishers.unmatched),
            "estop_messages": self.messages,
            "estop_duplicates": self.duplicates,
        }
        warning = ""
        if publishers.unmatched:
            warning = f"e-stop publisher not connected: {publishers.unmatched[0]}"
        elif publisher_required and publishers.matched == 0:
            warning = f"no e-stop publisher on {ESTOP_TOPIC}"
        return values, warning
