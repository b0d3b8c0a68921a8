"""The hand's joint controller: :mod:`arm_controller_node` with the XHand's defaults.

Publishes /hand/joint_states, follows /hand/joint_commands (the 12 XHand joints, radians),
obeys /safety/estop and offers ``~/reset_estop``, exactly as the arm controller does; the
``driver`` parameter picks the MuJoCo sim of the project's XHand URDF (``sim``) or the RS-485
hand (``xhand``, with ``driver_config`` such as ``"{port: /dev/ttyUSB0}"``).
"""

from __future__ import annotations

import sys

from human_video_policy.nodes.arm_controller_node import JointControllerNode
from human_video_policy.nodes.base import run_node


class HandControllerNode(JointControllerNode):
    """JointControllerNode defaulting to the XHand on /hand."""

    default_name = "hand_controller"
    DEFAULT_ROBOT = "xhand"
    DEFAULT_NAMESPACE = "/hand"


def main(args: list[str] | None = None) -> int:
    return run_node(HandControllerNode, args)


if __name__ == "__main__":
    sys.exit(main())
