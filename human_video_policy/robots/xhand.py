"""Robotera XHand (12 DoF, right hand) spec: joint names and order, frames and limits.

Pure Python (no ROS, no pinocchio at import), like robots/widowx.py, so retargeting, the sim,
the executor and the training code agree on one joint order. Names follow the vendor URDF
(xhand_right.urdf from MandiZhao/dexmachina, see ../shared/data/SOURCES.md); limits are read from
the project's own urdf/xhand_right.urdf, which test/test_xhand_model.py keeps equal to the vendor's.

Joint order (XHAND_JOINTS): the order in which the vendor's right-hand URDF declares its 12
revolute joints, thumb, index, middle, ring, pinky, each from the palm outwards. The reference
folder holds no SDK or driver docs, so the URDF is the only in-tree source for it; it is also the
order of the joint ids 0..11 of Robotera's XHand SDK as we understand it (not verified against
hardware here: check it on the first run with the real hand). Pinocchio orders the same joints
differently (depth-first over child links sorted by name: index, middle, pinky, ring, thumb), and
so does dex-retargeting, which returns pinocchio's order: always map by name, never by position.
ForwardKinematics takes XHAND_JOINTS order and does the mapping.

Frames (vendor convention): fingers point to -Z, thumb side +X, palm normal +Y, origin at the
wrist flange (PALM_FRAME). The vendor model already has a fixed tip link at the end of every
distal link (note the irregular names: the index tip is "index_rota_tip", the thumb tip
"thumb_rota_tip"); the project's URDF keeps them, no tip frames were added. The vendor model has
no mimic joints: all 12 joints are actuated and independent.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from human_video_policy.resources import resource_path
from human_video_policy.robots.joint_limits import JointLimits, read_urdf_joint_limits

XHAND_THUMB_JOINTS: tuple[str, ...] = (
    "right_hand_thumb_bend_joint",  # swings the thumb across the palm (axis z)
    "right_hand_thumb_rota_joint1",
    "right_hand_thumb_rota_joint2",
)
XHAND_INDEX_JOINTS: tuple[str, ...] = (
    "right_hand_index_bend_joint",  # index abduction (spread), +-0.175 rad
    "right_hand_index_joint1",
    "right_hand_index_joint2",
)
XHAND_MIDDLE_JOINTS: tuple[str, ...] = ("right_hand_mid_joint1", "right_hand_mid_joint2")
XHAND_RING_JOINTS: tuple[str, ...] = ("right_hand_ring_joint1", "right_hand_ring_joint2")
XHAND_PINKY_JOINTS: tuple[str, ...] = ("right_hand_pinky_joint1", "right_hand_pinky_joint2")

# The real hand's order (see the module docstring): what the policy and the executor command.
XHAND_JOINTS: tuple[str, ...] = (
    *XHAND_THUMB_JOINTS,
    *XHAND_INDEX_JOINTS,
    *XHAND_MIDDLE_JOINTS,
    *XHAND_RING_JOINTS,
    *XHAND_PINKY_JOINTS,
)

FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")
FINGER_JOINTS: dict[str, tuple[str, ...]] = {
    "thumb": XHAND_THUMB_JOINTS,
    "index": XHAND_INDEX_JOINTS,
    "middle": XHAND_MIDDLE_JOINTS,
    "ring": XHAND_RING_JOINTS,
    "pinky": XHAND_PINKY_JOINTS,
}
# Fixed links at the end of each distal link (vendor links, kept in the project's URDF).
FINGERTIP_FRAMES: dict[str, str] = {
    "thumb": "right_hand_thumb_rota_tip",
    "index": "right_hand_index_rota_tip",
    "middle": "right_hand_mid_tip",
    "ring": "right_hand_ring_tip",
    "pinky": "right_hand_pinky_tip",
}

PALM_FRAME = "right_hand_link"  # root link, at the wrist flange
# Fixed frame 65 mm down the palm (-Z) from the wrist flange, as in the vendor model.
EE_FRAME = "right_hand_ee_link"

# Simulated finger servos where the hand is simulated from the URDF alone (the hand controller's
# sim driver): the "hand" default class of mjcf/rm75_xhand_scene.xml, which
# test/test_xhand_model.py keeps equal. The URDF's own damping 1 and friction 1 N m are
# placeholders that make such a servo crawl at about 1 rad/s; with these (and gravity
# compensation, as the scene's hand bodies have) a finger settles on a 0.3 rad step in about
# 0.3 s (0.03 rad left after 0.15 s), as the scene's hand does.
SIM_SERVO_KP = 3.0  # N m/rad
SIM_JOINT_DYNAMICS = (0.05, 0.005, 0.002)  # damping N m s/rad, frictionloss N m, armature kg m^2


def xhand_urdf_path() -> Path:
    """The project's XHand right-hand URDF (primitive geometry, vendor kinematics)."""
    return resource_path("urdf", "xhand_right.urdf")


@lru_cache(maxsize=1)
def xhand_joint_limits() -> JointLimits:
    """Position and velocity limits of XHAND_JOINTS (rad, rad/s), from the project's URDF."""
    return read_urdf_joint_limits(xhand_urdf_path(), XHAND_JOINTS)
