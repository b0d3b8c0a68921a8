"""A simulated right human hand: put it in a scene, pose its wrist and fingers, read keypoints.

Simulated human demonstrations need a human hand doing the benchmark tasks in the same scenes
and from the same camera as the robots, with exact ground-truth keypoints. The hand is its own
MJCF file, ``mjcf/hands/human_hand_right.xml`` (its header documents the hand frame, the joints
and the keypoint sites), so it can go into any ``MjSpec`` scene:

- :func:`add_human_hand` attaches it with ``MjSpec.attach`` under a name prefix (default
  ``"hand/"``: body ``hand/hand``, joints ``hand/index_pip``, sites ``hand/kp_08``...), beside a
  robot or instead of one; the prefix lets two hands share a scene.
- :class:`HumanHand` binds a compiled model + data: :meth:`~HumanHand.set_wrist_pose` writes the
  mocap wrist (world frame; the world origin is the robot base frame of every task scene),
  :meth:`~HumanHand.set_posture` writes the 21 finger joints (positions and actuator targets,
  so stepping the physics holds the posture), :meth:`~HumanHand.keypoints` reads the 21
  keypoint sites (MediaPipe order) in the world frame.
- :class:`HumanHandWorld` is the tabletop with the hand only and a robot's scene camera (the
  WidowX camera by default): render, camera intrinsics and projection come from the shared
  world base, as for every task world.

Joint order (:data:`JOINT_NAMES`, the hand file's qpos and actuator order): the thumb
(``cmc_flex``, ``cmc_abd``, ``cmc_rot``, ``mcp``, ``ip``), then index, middle, ring and pinky
(``mcp_abd``, ``mcp_flex``, ``pip``, ``dip``) - MediaPipe's finger order. Angles in radians;
flexion > 0 bends toward the palm, MCP abduction > 0 turns a finger toward the thumb side (the
signs of hands/joint_angles.py).

The hand frame (body ``hand``) is the method A wrist frame of hands/wrist_pose.py: x from the
wrist to the middle MCP, z out of the palm, y toward the pinky; so the wrist pose that
:func:`~human_video_policy.hands.wrist_pose.wrist_pose_from_keypoints` recovers from this hand's
keypoints is the pose set here, in every finger posture.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache

import mujoco
import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.keypoints import INDEX_TIP, NUM_KEYPOINTS, THUMB_TIP
from human_video_policy.hands.rotations import check_rotation
from human_video_policy.resources import resource_path
from human_video_policy.sim.scene import TABLETOP, scene_robot, xyaxes_quaternion
from human_video_policy.sim.world_base import PositionControlledWorld
from human_video_policy.validation import check_int_range

HAND_MJCF = ("mjcf", "hands", "human_hand_right.xml")
DEFAULT_PREFIX = "hand/"
#: The hand's root body (mocap): its frame is the wrist frame.
ROOT_BODY = "hand"
FINGERS = ("thumb", "index", "middle", "ring", "pinky")
#: The 21 finger joints in qpos / actuator order (unprefixed).
JOINT_NAMES: tuple[str, ...] = (
    *("thumb_cmc_flex", "thumb_cmc_abd", "thumb_cmc_rot", "thumb_mcp", "thumb_ip"),
    *(
        f"{finger}_{joint}"
        for finger in FINGERS[1:]
        for joint in ("mcp_abd", "mcp_flex", "pip", "dip")
    ),
)
#: Keypoint sites in MediaPipe order (hands/keypoints.py).
KEYPOINT_SITES: tuple[str, ...] = tuple(f"kp_{i:02d}" for i in range(NUM_KEYPOINTS))


def hand_spec() -> mujoco.MjSpec:
    """The hand MJCF as an (uncompiled) spec."""
    return mujoco.MjSpec.from_file(str(resource_path(*HAND_MJCF)))


def add_human_hand(spec: mujoco.MjSpec, prefix: str = DEFAULT_PREFIX) -> None:
    """Attach the hand to ``spec``'s world with every name prefixed by ``prefix``.

    The hand's root stays a mocap body (the wrist is placed by writing its mocap pose); its
    materials and default classes come along, prefixed, so no name clashes with the scene."""
    if not prefix:
        raise ConfigError("prefix='' is invalid: the hand's names need a prefix ('hand/')")
    spec.attach(hand_spec(), prefix=prefix, frame=spec.worldbody.add_frame())


def _names(prefix: str) -> tuple[str, ...]:
    return tuple(prefix + n for n in JOINT_NAMES)


class HumanHand:
    """The hand in a compiled scene (see the module docstring). Not thread-safe."""

    joint_names: tuple[str, ...] = JOINT_NAMES

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, prefix: str = DEFAULT_PREFIX):
        self.model, self.data, self.prefix = model, data, prefix
        try:
            root = model.body(prefix + ROOT_BODY)
            joints = [model.joint(n) for n in _names(prefix)]
            self._sites = np.array([model.site(prefix + s).id for s in KEYPOINT_SITES])
            self.actuator_index = np.array([model.actuator(n).id for n in _names(prefix)])
        except KeyError as exc:
            raise ConfigError(f"the model has no human hand with prefix {prefix!r}: {exc}") from exc
        self._mocap = int(root.mocapid[0])
        if self._mocap < 0:
            raise ConfigError(f"body {prefix + ROOT_BODY!r} is not a mocap body")
        self.root_body = int(root.id)
        self.qpos_index = np.array([int(j.qposadr[0]) for j in joints])
        self.qvel_index = np.array([int(j.dofadr[0]) for j in joints])
        #: (21, 2) joint ranges (rad), JOINT_NAMES order.
        self.ranges = np.array([j.range for j in joints], dtype=np.float64)

    # -- setting -----------------------------------------------------------------------------
    def set_wrist_pose(self, position: object, rotation: object) -> None:
        """Put the wrist (kp_00, the hand frame) at ``position`` (3,) with orientation
        ``rotation`` (3, 3: columns = the hand's x, y, z axes), both in the world frame."""
        p = np.asarray(position, dtype=np.float64)
        if p.shape != (3,) or not np.isfinite(p).all():
            raise InputError(f"wrist position must be 3 finite values, got {position!r}")
        R = check_rotation("wrist rotation", rotation, tol=1e-5)
        if R.shape != (3, 3):
            raise InputError(f"wrist rotation must have shape (3, 3), got {R.shape}")
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, R.flatten())
        self.data.mocap_pos[self._mocap] = p
        self.data.mocap_quat[self._mocap] = quat
        self.forward()

    def set_posture(self, angles: object, clip: bool = False) -> np.ndarray:
        """Set the finger joints kinematically (at rest) and as actuator targets.

        ``angles``: (21,) radians in :data:`JOINT_NAMES` order, or a mapping joint name ->
        angle (joints not named keep their angle). Out-of-range angles raise InputError naming
        the joint, unless ``clip`` clamps them into the ranges. Returns the angles set."""
        q = self._full_posture(angles)
        low, high = self.ranges[:, 0], self.ranges[:, 1]
        if clip:
            q = np.clip(q, low, high)
        else:
            bad = np.flatnonzero((q < low - 1e-9) | (q > high + 1e-9))
            if bad.size:
                i = int(bad[0])
                raise InputError(
                    f"{JOINT_NAMES[i]}={q[i]:.4f} rad is outside its range "
                    f"[{low[i]:.3f}, {high[i]:.3f}] (pass clip=True to clamp)"
                )
        self.data.qpos[self.qpos_index] = q
        self.data.qvel[self.qvel_index] = 0.0
        self.data.ctrl[self.actuator_index] = q
        self.forward()
        return q

    def _full_posture(self, angles: object) -> np.ndarray:
        if isinstance(angles, Mapping):
            q = self.posture()
            for name, value in angles.items():
                if name not in JOINT_NAMES:
                    raise InputError(f"unknown hand joint {name!r}: choose from {JOINT_NAMES}")
                q[JOINT_NAMES.index(name)] = float(value)
        else:
            q = np.asarray(angles, dtype=np.float64)
            if q.shape != (len(JOINT_NAMES),):
                raise InputError(
                    f"hand posture must have shape ({len(JOINT_NAMES)},), got {q.shape}"
                )
            q = q.copy()
        if not np.isfinite(q).all():
            raise InputError(f"hand posture contains NaN/inf: {q.tolist()}")
        return q

    def open(self) -> np.ndarray:
        """Flat open hand."""
        return self.set_posture(open_posture())

    def fist(self) -> np.ndarray:
        """Closed fist, the thumb over the middle phalanges of index and middle."""
        return self.set_posture(fist_posture())

    def pinch(self) -> np.ndarray:
        """Precision pinch: thumb pulp on index pulp, the other fingers curled."""
        return self.set_posture(pinch_posture())

    def grasp(self, aperture: float) -> np.ndarray:
        """Pinch-grasp shape with ``aperture`` m between thumb tip and index tip
        (:func:`grasp_posture`)."""
        return self.set_posture(grasp_posture(aperture))

    def forward(self) -> None:
        """Recompute positions (sites, bodies) after writing poses."""
        mujoco.mj_forward(self.model, self.data)

    # -- reading -----------------------------------------------------------------------------
    def posture(self) -> np.ndarray:
        """(21,) current finger joint angles (rad), :data:`JOINT_NAMES` order."""
        return self.data.qpos[self.qpos_index].copy()

    def keypoints(self) -> np.ndarray:
        """(21, 3) keypoints (MediaPipe order) in the world frame, metres."""
        return self.data.site_xpos[self._sites].copy()

    def wrist_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Position (3,) and rotation (3, 3) of the hand frame in the world."""
        b = self.root_body
        return self.data.xpos[b].copy(), self.data.xmat[b].reshape(3, 3).copy()


# -- postures --------------------------------------------------------------------------------
def _posture(
    thumb: tuple[float, float, float, float, float], **fingers: tuple[float, float, float, float]
) -> np.ndarray:
    """A posture from the thumb's 5 angles and (abd, mcp, pip, dip) per finger (default 0)."""
    q = [*thumb]
    for finger in FINGERS[1:]:
        q.extend(fingers.get(finger, (0.0, 0.0, 0.0, 0.0)))
    return np.array(q, dtype=np.float64)


def open_posture() -> np.ndarray:
    """All joints straight: the flat hand of the MJCF file."""
    return np.zeros(len(JOINT_NAMES))


def fist_posture() -> np.ndarray:
    """Fingers fully curled, the thumb across them."""
    return _posture(
        (0.48, 0.84, 1.2, 0.44, 0.9),
        index=(0.0, 1.45, 1.75, 1.0),
        middle=(0.0, 1.45, 1.75, 1.0),
        ring=(0.0, 1.45, 1.75, 1.0),
        pinky=(0.0, 1.45, 1.75, 1.0),
    )


def pinch_posture() -> np.ndarray:
    """Thumb tip and index tip together, the other three fingers curled."""
    return _posture(
        (0.05, 0.84, 1.2, 0.62, -0.3),
        index=(0.0, 1.0, 0.8, 0.3),
        middle=(0.0, 1.2, 1.4, 0.9),
        ring=(0.0, 1.3, 1.5, 0.9),
        pinky=(0.0, 1.35, 1.5, 0.9),
    )


#: The grasp family: fully opened (pre-shape) and closed (tips meeting) ends.
_GRASP_OPEN = _posture(
    (-0.1, 0.7, 1.0, 0.0, 0.0),
    index=(0.0, 0.3, 0.2, 0.1),
    middle=(0.0, 0.35, 0.3, 0.15),
    ring=(0.0, 0.5, 0.5, 0.25),
    pinky=(0.0, 0.6, 0.55, 0.3),
)


def _grasp_blend(s: float) -> np.ndarray:
    return (1.0 - s) * _GRASP_OPEN + s * pinch_posture()


@lru_cache(maxsize=1)
def _hand_alone() -> tuple[mujoco.MjModel, mujoco.MjData]:
    model = hand_spec().compile()
    return model, mujoco.MjData(model)


def tip_aperture(q: np.ndarray) -> float:
    """Distance (m) between the thumb tip and the index tip in posture ``q``."""
    model, data = _hand_alone()
    data.qpos[:] = q
    mujoco.mj_kinematics(model, data)
    thumb = data.site_xpos[model.site(KEYPOINT_SITES[THUMB_TIP]).id]
    index = data.site_xpos[model.site(KEYPOINT_SITES[INDEX_TIP]).id]
    return float(np.linalg.norm(thumb - index))


def grasp_aperture_range() -> tuple[float, float]:
    """(closed, open) thumb-tip to index-tip distances (m) :func:`grasp_posture` can make."""
    return tip_aperture(_grasp_blend(1.0)), tip_aperture(_grasp_blend(0.0))


def grasp_posture(aperture: float) -> np.ndarray:
    """The grasp posture whose thumb tip and index tip are ``aperture`` m apart.

    Blends the open pre-shape into the pinch (the distance shrinks monotonically along the
    blend) and bisects the blend, so a task can open the hand to an object's width plus a
    margin, as a gripper opens. Outside :func:`grasp_aperture_range` raises InputError."""
    closed, opened = grasp_aperture_range()
    if not (isinstance(aperture, (int, float)) and closed - 1e-6 <= aperture <= opened + 1e-6):
        raise InputError(
            f"grasp aperture={aperture!r} is invalid: must be within [{closed:.4f}, "
            f"{opened:.4f}] m (thumb tip to index tip)"
        )
    lo, hi = 0.0, 1.0  # blend 0 = open, 1 = closed
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if tip_aperture(_grasp_blend(mid)) > aperture:
            lo = mid
        else:
            hi = mid
    return _grasp_blend(0.5 * (lo + hi))


#: Named postures (``grasp`` needs an aperture, so it is not here).
POSTURES: dict[str, Callable[[], np.ndarray]] = {
    "open": open_posture,
    "fist": fist_posture,
    "pinch": pinch_posture,
}


# -- a scene with the hand only ----------------------------------------------------------------
def hand_scene_spec(
    camera_robot: str = "widowx",
    add_objects: Callable[[mujoco.MjSpec], None] | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> mujoco.MjSpec:
    """The tabletop (mjcf/scenes/tabletop.xml) with the hand instead of a robot, the scene
    camera ``camera_robot``'s task scenes use (sim/scene.py) and ``add_objects``' bodies."""
    robot = scene_robot(camera_robot)
    spec = mujoco.MjSpec.from_file(str(resource_path(*TABLETOP)))
    spec.worldbody.add_camera(
        name="scene_camera",
        pos=list(robot.camera_pos),
        quat=list(xyaxes_quaternion(robot.camera_xyaxes)),
        fovy=robot.camera_fovy,
    )
    add_human_hand(spec, prefix)
    if add_objects is not None:
        add_objects(spec)
    return spec


class HumanHandWorld(PositionControlledWorld):
    """The hand-only tabletop scene as a position-controlled world (commands = the 21 finger
    joints), rendering the scene camera at ``image_size`` (width, height); ``hand`` poses it.

    The base frame is the world (the robot base frame of the task scenes)."""

    camera_name = "scene_camera"

    def __init__(
        self,
        image_size: tuple[int, int] = (320, 240),
        camera_robot: str = "widowx",
        add_objects: Callable[[mujoco.MjSpec], None] | None = None,
    ) -> None:
        width, height = image_size
        check_int_range("image width", width, 1, 1280)
        check_int_range("image height", height, 1, 960)
        self.model = hand_scene_spec(camera_robot, add_objects).compile()
        self.data = mujoco.MjData(self.model)
        self.hand = HumanHand(self.model, self.data)
        self.joint_names = _names(DEFAULT_PREFIX)
        self._qpos_index = self.hand.qpos_index
        self._qvel_index = self.hand.qvel_index
        self._actuator_index = self.hand.actuator_index
        self._base_body = 0
        self._init_home_and_camera(
            tuple(open_posture()),
            self.model.camera(self.camera_name).id,
            (width, height),
            10.0,
            f"{self.camera_name}_optical_frame",
        )
        self.hand.forward()

    def project_points(self, points: object) -> np.ndarray:
        """(N, 2) pixels of (N, 3) world points (each through :meth:`project`)."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return np.array([self.project(p) for p in pts])

    def keypoints_px(self) -> np.ndarray:
        """(21, 2) pixels of the hand's keypoints in the rendered image."""
        return self.project_points(self.hand.keypoints())

    def keypoint_overlay(self) -> np.ndarray:
        """The rendered image with the 21 projected keypoints drawn and joined (bones)."""
        from human_video_policy.pipeline.render import draw_hand_skeleton

        image = self.render_rgb().copy()
        draw_hand_skeleton(image, self.keypoints_px())
        return image


def hand_frame(fingers: object, palm_normal: object) -> np.ndarray:
    """The wrist rotation whose x axis points along ``fingers`` and whose z axis (out of the
    palm) is ``palm_normal`` made orthogonal to it: how scripts aim the hand."""
    x = np.asarray(fingers, dtype=np.float64)
    z = np.asarray(palm_normal, dtype=np.float64)
    if x.shape != (3,) or z.shape != (3,) or not (np.isfinite(x).all() and np.isfinite(z).all()):
        raise InputError(f"fingers and palm_normal must be 3-vectors, got {fingers}, {palm_normal}")
    x = x / max(float(np.linalg.norm(x)), 1e-12)
    z = z - (z @ x) * x
    norm = float(np.linalg.norm(z))
    if norm < 1e-6:
        raise InputError("palm_normal must not be parallel to fingers")
    z /= norm
    return np.column_stack([x, np.cross(z, x), z])


#: The picture's hand (docs/images/sim_human_hand_keypoints.png): a right hand reaching in from
#: the robot's left over the workspace, palm down and turned toward the WidowX scene camera,
#: opened to a 6 cm grasp.
DEMO_WRIST_POSITION = (0.31, 0.09, 0.15)
DEMO_FINGERS = (0.1, -1.0, -0.35)
DEMO_PALM_NORMAL = (0.8, 0.0, -1.0)
DEMO_APERTURE = 0.06


def demo_world(image_size: tuple[int, int] = (480, 360)) -> HumanHandWorld:
    """The hand-only scene with the picture's hand pose and grasp posture."""
    world = HumanHandWorld(image_size)
    world.hand.set_wrist_pose(DEMO_WRIST_POSITION, hand_frame(DEMO_FINGERS, DEMO_PALM_NORMAL))
    world.hand.grasp(DEMO_APERTURE)
    return world


def main(argv: list[str] | None = None) -> int:
    """``python -m human_video_policy.sim.human_hand OUT.png``: write the demo render and,
    beside it, the same render with the keypoint overlay."""
    import sys

    import cv2

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].endswith(".png"):
        print("usage: python -m human_video_policy.sim.human_hand OUT.png", file=sys.stderr)
        return 2
    with demo_world() as world:
        image = np.hstack([world.render_rgb(), world.keypoint_overlay()])
    if not cv2.imwrite(args[0], cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise InputError(f"cannot write {args[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
