"""The deadman switch as a node: /teleop/enable (std_msgs/Bool) ``true`` at ``rate_hz`` while
held, one ``false`` on release and at exit.

``mode: always`` holds it from start until the process is stopped (Ctrl-C): the operator's
hand on the keyboard is the switch. ``mode: key`` holds it only while ``key`` is held down on
the terminal this process reads (teleop/keyboard_deadman.py: presses within ``key_hold_s``).
Subscribers (wrist_teleop_node, leader_follower_node) treat each ``true`` as valid for their
``deadman_timeout_s``, so ``rate_hz`` must be well above 1 / deadman_timeout_s (20 Hz vs
0.25 s by default), and a killed or frozen deadman stops the robot.

``duration_s`` > 0 holds it for that long and then releases it and exits 0. The time counts
from the moment the publisher matched a subscriber (waiting at most ``subscriber_wait_s``, then
exit 1), not from the start of the process: counted from the start, Python and rclpy start-up
and DDS discovery (1-3 s on a busy machine) came off the hold, which lasted 5.9 s of 8.

``hvp teleop enable`` runs this node (cli/teleop_cmd.py).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import Any

from rclpy.duration import Duration
from std_msgs.msg import Bool

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.nodes.base import (
    EXIT_FAILURE,
    EXIT_OK,
    DiagnosticsReport,
    HvpNode,
    Level,
    run_node,
)
from human_video_policy.nodes.qos import RELIABLE
from human_video_policy.teleop.keyboard_deadman import KeyHold, TerminalKeys
from human_video_policy.validation import check_choice, check_range

MODES = ("always", "key")
RELEASE_DELIVERY_S = 0.3


class DeadmanNode(HvpNode):
    """Publishes the deadman; see the module docstring."""

    default_name = "deadman"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        self.mode = self.param(
            "mode",
            "always",
            f"One of {list(MODES)}: held until stopped, or while a key is held.",
            lambda n, v: check_choice(n, v, MODES),
        )
        self.rate_hz = self.param(
            "rate_hz",
            20.0,
            "Messages per second while held (Hz).",
            lambda n, v: check_range(n, v, 5.0, 200.0),
        )
        self.duration_s = self.param(
            "duration_s",
            0.0,
            "Hold for this long once a subscriber is connected, then release and exit (s); "
            "0 = until stopped.",
            lambda n, v: check_range(n, v, 0.0, 86400.0),
        )
        self.subscriber_wait_s = self.param(
            "subscriber_wait_s",
            10.0,
            "With duration_s: exit 1 when no subscriber connected within this long (s).",
            lambda n, v: check_range(n, v, 0.1, 3600.0),
        )
        key = self.param("key", " ", "mode key: the key to hold (one character; space).")
        hold_s = self.param(
            "key_hold_s",
            0.7,
            "mode key: held until this long without an auto-repeated press (s).",
            lambda n, v: check_range(n, v, 0.05, 5.0),
        )
        try:
            self.hold = KeyHold(key, hold_s)
            self.keys = TerminalKeys() if self.mode == "key" else None
        except InputError as exc:
            raise ConfigError(f"parameter mode={self.mode!r}: {exc}") from None
        self._pub = self.create_publisher(Bool, "/teleop/enable", RELIABLE)
        self.held = False
        self.sent = 0
        self.enable_diagnostics()

    def _send(self, value: bool) -> None:
        self._pub.publish(Bool(data=value))
        self.sent += 1

    def _wait_for_subscriber(self, stop: threading.Event) -> bool:
        """Until the publisher matched a subscriber: True, or False (exit requested) after
        ``subscriber_wait_s`` or when stopped."""
        topic = self._pub.topic_name
        print(f"waiting for a subscriber of {topic}...", file=sys.stderr, flush=True)
        end = time.monotonic() + self.subscriber_wait_s
        while not stop.is_set():
            if self._pub.get_subscription_count() > 0:
                return True
            if time.monotonic() >= end:
                self.request_exit(
                    EXIT_FAILURE,
                    f"no subscriber of {topic} within {self.subscriber_wait_s:g} s: is the "
                    "teleop graph running, on this ROS_DOMAIN_ID?",
                )
                return False
            stop.wait(0.01)
        return False

    def run(self, stop: threading.Event) -> None:
        period = 1.0 / self.rate_hz
        topic = self._pub.topic_name
        deadline = math.inf
        if self.duration_s > 0:
            if not self._wait_for_subscriber(stop):
                return
            deadline = time.monotonic() + self.duration_s
        until = f"for {self.duration_s:g} s" if self.duration_s > 0 else "until Ctrl-C"
        if self.keys is None:
            print(f"deadman HELD: {topic} true {until}", file=sys.stderr, flush=True)
            next_send = time.monotonic()
            while not stop.is_set() and time.monotonic() < deadline:
                self.held = True
                self._send(True)
                next_send += period
                stop.wait(max(0.0, min(next_send, deadline) - time.monotonic()))
            self._end_of_duration(deadline)
            return
        print(
            f"hold {self.hold.key!r} to enable teleoperation ({until}); Ctrl-C to quit",
            file=sys.stderr,
        )
        with self.keys:
            next_send = time.monotonic()
            while not stop.is_set() and time.monotonic() < deadline:
                self.hold.feed(self.keys.read(timeout_s=min(period, 0.02)), time.monotonic())
                now = time.monotonic()
                held = self.hold.held(now)
                if held != self.held:
                    print("deadman HELD" if held else "deadman released", file=sys.stderr)
                    if not held:
                        self._send(False)
                    self.held = held
                if held and now >= next_send:
                    self._send(True)
                    next_send = now + period
        self._end_of_duration(deadline)

    def _end_of_duration(self, deadline: float) -> None:
        """After ``duration_s``: release now (not after the executor shut down) and exit 0."""
        if time.monotonic() < deadline:
            return  # stopped (Ctrl-C) or waiting failed: close() releases
        self._send(False)
        self.held = False
        self.request_exit(EXIT_OK, f"deadman released after {self.duration_s:g} s")

    def close(self) -> None:
        self._send(False)  # release at once rather than after the subscribers' timeout
        # The process exits next and its participant with it: give DDS a moment to deliver the
        # release (on a busy machine it was lost that way; the subscribers' own timeout then
        # drops the deadman 0.25 s later). Returns early once every subscriber acknowledged.
        self._pub.wait_for_all_acked(Duration(seconds=RELEASE_DELIVERY_S))

    def diagnostics_report(self) -> DiagnosticsReport:
        return DiagnosticsReport(
            Level.OK, "held" if self.held else "released", {"mode": self.mode, "sent": self.sent}
        )


def main(args: list[str] | None = None) -> int:
    return run_node(DeadmanNode, args)


if __name__ == "__main__":
    sys.exit(main())
