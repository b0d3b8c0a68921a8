"""The deadman switch as a node: /teleop/enable (std_msgs/Bool) ``true`` at ``rate_hz`` while
held, one ``false`` on release and at exit.

``mode: always`` holds it from start until the process is stopped (Ctrl-C): the operator's
hand on the keyboard is the switch. ``mode: key`` holds it only while ``key`` is held down on
the terminal this process reads (teleop/keyboard_deadman.py: presses within ``key_hold_s``).
Subscribers (wrist_teleop_node, leader_follower_node) treat each ``true`` as valid for their
``deadman_timeout_s``, so ``rate_hz`` must be well above 1 / deadman_timeout_s (20 Hz vs
0.25 s by default), and a killed or frozen deadman stops the robot.

``hvp teleop enable`` runs this node (cli/teleop_cmd.py).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from rclpy.duration import Duration
from std_msgs.msg import Bool

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.nodes.base import DiagnosticsReport, HvpNode, Level, run_node
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

    def run(self, stop: threading.Event) -> None:
        period = 1.0 / self.rate_hz
        if self.keys is None:
            print("deadman HELD: /teleop/enable true until Ctrl-C", file=sys.stderr, flush=True)
            while not stop.wait(period):
                self.held = True
                self._send(True)
            return
        print(f"hold {self.hold.key!r} to enable teleoperation; Ctrl-C to quit", file=sys.stderr)
        with self.keys:
            next_send = time.monotonic()
            while not stop.is_set():
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
