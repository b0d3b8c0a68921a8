"""The pinhole camera model of the whole stack: intrinsics and the camera -> base transform.

One :class:`CameraIntrinsics` serves the camera node (RealSense, video files), the simulators'
rendered cameras, CameraInfo conversion, hand lifting and overlays, so every consumer agrees on
pixel conventions and every intrinsics object was validated once.

Conventions (docs/hand_lifting.md):

- Camera optical frame (REP-103): x right, y down, z forward, metres.
- Pixels: ``u`` right, ``v`` down, pixel *centres* at integer coordinates (OpenCV / ROS
  CameraInfo), so the centre of a ``W x H`` image is ``((W - 1) / 2, (H - 1) / 2)``.
- ``CameraExtrinsics`` holds ``T_base_camera``: it maps a point expressed in the camera optical
  frame to the robot base frame (``p_base = R p_cam + t``).

Absurd intrinsics (a focal length of 0 or NaN, a principal point far outside the image, a field
of view no real pinhole camera has) are refused with a :class:`ConfigError` naming the value,
because lifting with them would silently put the hand metres away from where it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.validation import (
    check_float_list,
    check_int_range,
    check_positive,
    check_range,
)

#: Plausible field-of-view range of a pinhole camera, degrees (both axes).
MIN_FOV_DEG = 5.0
MAX_FOV_DEG = 160.0
#: How far outside the image the principal point may lie, as a fraction of the image size.
PRINCIPAL_POINT_MARGIN = 0.25
#: Allowed fx / fy (non-square pixels are rare; beyond this the intrinsics are wrong).
MAX_PIXEL_ASPECT = 2.0
#: Default horizontal field of view when the intrinsics are unknown (degrees). Typical of
#: webcams and phone main cameras in video mode (60-70 degrees); a RealSense D435 colour
#: camera is about 69 degrees.
DEFAULT_HFOV_DEG = 60.0

DEFAULT_CAMERA_FRAME = "camera_color_optical_frame"
#: The identity transform as a node parameter ``[x, y, z, qx, qy, qz, qw]``.
IDENTITY_POSE_PARAM: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
#: ROS CameraInfo distortion models and their number of coefficients.
DISTORTION_COEFFICIENTS: dict[str, int] = {
    "plumb_bob": 5,
    "rational_polynomial": 8,
    "equidistant": 4,
}
DEFAULT_BASE_FRAME = "wx250s/base_link"


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of one image stream.

    Attributes:
        width, height: image size in pixels (1 .. 16384).
        fx, fy: focal lengths in pixels (> 0; fx / fy within [1/2, 2]).
        cx, cy: principal point in pixels, pixel centres at integer coordinates; must lie within
            the image enlarged by 25 % of its size on every side.
        frame_id: the camera optical frame these intrinsics belong to (x right, y down,
            z forward).
        distortion_model: ROS CameraInfo name of the lens model: ``plumb_bob`` (5 coefficients
            k1 k2 t1 t2 k3), ``rational_polynomial`` (8) or ``equidistant`` (4). Projection here
            ignores distortion: use rectified images or a camera whose distortion is negligible
            (a RealSense colour stream reports ``inverse_brown_conrady`` with zero coefficients).
        distortion: the model's coefficients, carried to CameraInfo.d unchanged.

    The horizontal and vertical fields of view implied by fx, fy and the size must be within
    [5, 160] degrees. Any violation raises ConfigError naming the value.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    frame_id: str = DEFAULT_CAMERA_FRAME
    distortion_model: str = "plumb_bob"
    distortion: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        check_int_range("width", self.width, 1, 16384)
        expected = DISTORTION_COEFFICIENTS.get(self.distortion_model)
        if expected is None:
            raise ConfigError(
                f"distortion_model={self.distortion_model!r} is invalid: one of "
                f"{sorted(DISTORTION_COEFFICIENTS)}"
            )
        try:
            coefficients = tuple(float(c) for c in self.distortion)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"distortion={self.distortion!r} must be numbers: {exc}") from exc
        if len(coefficients) != expected or not all(math.isfinite(c) for c in coefficients):
            raise ConfigError(
                f"distortion={list(coefficients)} is invalid: {self.distortion_model} needs "
                f"{expected} finite coefficients"
            )
        object.__setattr__(self, "distortion", coefficients)
        check_int_range("height", self.height, 1, 16384)
        for name in ("fx", "fy"):
            object.__setattr__(self, name, check_positive(name, getattr(self, name)))
        for name, size in (("cx", self.width), ("cy", self.height)):
            margin = PRINCIPAL_POINT_MARGIN * size
            value = check_range(name, getattr(self, name), -margin, size - 1 + margin)
            object.__setattr__(self, name, value)
        aspect = self.fx / self.fy
        if not 1.0 / MAX_PIXEL_ASPECT <= aspect <= MAX_PIXEL_ASPECT:
            raise ConfigError(
                f"fx/fy={aspect:.3g} (fx={self.fx:g}, fy={self.fy:g}) is invalid: must be in "
                f"[{1 / MAX_PIXEL_ASPECT:g}, {MAX_PIXEL_ASPECT:g}]"
            )
        for name, fov in (("horizontal", self.hfov_deg), ("vertical", self.vfov_deg)):
            if not MIN_FOV_DEG <= fov <= MAX_FOV_DEG:
                raise ConfigError(
                    f"{name} field of view {fov:.3g} deg (width={self.width}, height="
                    f"{self.height}, fx={self.fx:g}, fy={self.fy:g}) is invalid: must be in "
                    f"[{MIN_FOV_DEG:g}, {MAX_FOV_DEG:g}] deg; are fx/fy in pixels for this "
                    "image size?"
                )
        if not isinstance(self.frame_id, str):
            raise ConfigError(f"frame_id={self.frame_id!r} is invalid: must be a string")

    @classmethod
    def from_fov(
        cls,
        width: int,
        height: int,
        hfov_deg: float = DEFAULT_HFOV_DEG,
        frame_id: str = DEFAULT_CAMERA_FRAME,
    ) -> CameraIntrinsics:
        """An estimate for a camera whose intrinsics are unknown: square pixels, the principal
        point at the image centre and ``fx = (width / 2) / tan(hfov / 2)``."""
        check_range("hfov_deg", hfov_deg, MIN_FOV_DEG, MAX_FOV_DEG)
        check_int_range("width", width, 1, 16384)
        check_int_range("height", height, 1, 16384)
        f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0, frame_id)

    @classmethod
    def from_matrix(
        cls, K: object, width: int, height: int, frame_id: str = DEFAULT_CAMERA_FRAME
    ) -> CameraIntrinsics:
        """From a 3x3 camera matrix (e.g. CameraInfo.k reshaped); skew must be 0."""
        k = np.asarray(K, dtype=np.float64)
        if k.shape == (9,):
            k = k.reshape(3, 3)
        if k.shape != (3, 3):
            raise ConfigError(f"camera matrix must be 3x3 (or 9 values), got shape {k.shape}")
        if not np.isfinite(k).all():
            raise ConfigError(f"camera matrix contains NaN/inf: {k.tolist()}")
        if abs(k[0, 1]) > 1e-9 or np.abs(k[2] - [0.0, 0.0, 1.0]).max() > 1e-9 or k[1, 0] != 0:
            raise ConfigError(f"camera matrix must be [[fx,0,cx],[0,fy,cy],[0,0,1]], got {k}")
        return cls(width, height, float(k[0, 0]), float(k[1, 1]), k[0, 2], k[1, 2], frame_id)

    @property
    def matrix(self) -> np.ndarray:
        """The 3x3 camera matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(self.width / (2.0 * self.fx)))

    @property
    def vfov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(self.height / (2.0 * self.fy)))

    def scaled(self, width: int, height: int) -> CameraIntrinsics:
        """The same camera for the image resized to ``width x height``."""
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(
            width,
            height,
            self.fx * sx,
            self.fy * sy,
            (self.cx + 0.5) * sx - 0.5,
            (self.cy + 0.5) * sy - 0.5,
            self.frame_id,
            self.distortion_model,
            self.distortion,
        )

    def project(self, points: object) -> np.ndarray:
        """``(..., 3)`` camera-frame points (z > 0) -> ``(..., 2)`` pixels."""
        p = np.asarray(points, dtype=np.float64)
        if p.ndim < 1 or p.shape[-1] != 3:
            raise InputError(f"points must have shape (..., 3), got {p.shape}")
        z = p[..., 2]
        if not (np.isfinite(p).all() and (z > 0).all()):
            raise InputError("points to project must be finite with z > 0 (in front of the camera)")
        return np.stack([self.fx * p[..., 0] / z + self.cx, self.fy * p[..., 1] / z + self.cy], -1)

    def backproject(self, pixels: object, depth_m: object) -> np.ndarray:
        """``(..., 2)`` pixels and ``(...)`` depths along z (m) -> ``(..., 3)`` camera points."""
        uv = np.asarray(pixels, dtype=np.float64)
        z = np.asarray(depth_m, dtype=np.float64)
        if uv.ndim < 1 or uv.shape[-1] != 2 or z.shape != uv.shape[:-1]:
            raise InputError(
                f"pixels (..., 2) and depths (...) must match, got {uv.shape} and {z.shape}"
            )
        x = (uv[..., 0] - self.cx) / self.fx * z
        y = (uv[..., 1] - self.cy) / self.fy * z
        return np.stack([x, y, z], axis=-1)


def _quaternion_xyzw_to_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


@dataclass(frozen=True, eq=False)
class CameraExtrinsics:
    """The rigid transform ``T_base_camera`` (camera optical frame -> robot base frame).

    Attributes:
        matrix: ``(4, 4)`` homogeneous transform; its rotation must be orthonormal with
            determinant +1 (tolerance 1e-6) and its last row ``[0, 0, 0, 1]``. Translation in
            metres.
        base_frame: the frame points are mapped into (REP-103: x forward, y left, z up).
        camera_frame: the camera optical frame points come from.
    """

    matrix: np.ndarray
    base_frame: str = DEFAULT_BASE_FRAME
    camera_frame: str = DEFAULT_CAMERA_FRAME
    _rotation: np.ndarray = field(init=False, repr=False, compare=False)
    _translation: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            T = np.array(self.matrix, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"extrinsic matrix must be numeric 4x4: {exc}") from exc
        if T.shape != (4, 4):
            raise ConfigError(f"extrinsic matrix must have shape (4, 4), got {T.shape}")
        if not np.isfinite(T).all():
            raise ConfigError("extrinsic matrix contains NaN/inf")
        if np.abs(T[3] - [0.0, 0.0, 0.0, 1.0]).max() > 1e-9:
            raise ConfigError(f"extrinsic matrix last row must be [0, 0, 0, 1], got {T[3]}")
        R = T[:3, :3]
        err = float(np.abs(R.T @ R - np.eye(3)).max())
        if err > 1e-6 or np.linalg.det(R) <= 0:
            raise ConfigError(
                f"extrinsic rotation is not a rotation (|R^T R - I| = {err:.2g}, "
                f"det = {np.linalg.det(R):.3g}): must be orthonormal with det +1"
            )
        T.setflags(write=False)
        object.__setattr__(self, "matrix", T)
        object.__setattr__(self, "_rotation", T[:3, :3])
        object.__setattr__(self, "_translation", T[:3, 3])

    @classmethod
    def from_matrix(cls, T_base_camera: object, **frames: str) -> CameraExtrinsics:
        """From a 4x4 ``T_base_camera`` (``base_frame=``/``camera_frame=`` optional)."""
        return cls(np.asarray(T_base_camera), **frames)

    @classmethod
    def from_xyz_quaternion(
        cls, xyz: object, quaternion_xyzw: object, **frames: str
    ) -> CameraExtrinsics:
        """From the camera position in the base frame (m) and its orientation as a unit
        quaternion in ROS order ``(x, y, z, w)`` (as in a static transform / tf2)."""
        t = np.asarray(xyz, dtype=np.float64)
        q = np.asarray(quaternion_xyzw, dtype=np.float64)
        if t.shape != (3,) or not np.isfinite(t).all():
            raise ConfigError(f"xyz must be 3 finite values (m), got {t.tolist()}")
        if q.shape != (4,) or not np.isfinite(q).all():
            raise ConfigError(f"quaternion_xyzw must be 4 finite values, got {q.tolist()}")
        norm = float(np.linalg.norm(q))
        if abs(norm - 1.0) > 1e-3:
            raise ConfigError(
                f"quaternion_xyzw={q.tolist()} is invalid: must have unit norm (got {norm:.4g})"
            )
        T = np.eye(4)
        T[:3, :3] = _quaternion_xyzw_to_matrix(q)
        T[:3, 3] = t
        return cls(T, **frames)

    @classmethod
    def from_param(cls, name: str, value: object, **frames: str) -> CameraExtrinsics:
        """From a node parameter ``[x, y, z (m), qx, qy, qz, qw]``; errors name ``name``."""
        values = check_float_list(name, value, 7)
        try:
            return cls.from_xyz_quaternion(values[:3], values[3:], **frames)
        except ConfigError as exc:
            raise ConfigError(f"{name}={value!r} is invalid: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> tuple[CameraExtrinsics, str]:
        """The extrinsic in a YAML file, and the field it came from (``FILE#field``).

        Accepted (``base_frame`` / ``camera_frame`` beside the pose are used when present):

        * a ROS 2 parameters file such as config/ik.params.yaml: the one node whose
          ``ros__parameters`` hold ``camera_extrinsic`` (several such nodes are refused);
        * ``camera_extrinsic: [x, y, z (m), qx, qy, qz, qw]`` at the top level (the node
          parameter's form);
        * ``T_base_camera:`` a 4x4 matrix (row-major list of rows) at the top level.

        Errors (ConfigError) name the file and the field: a NaN, a non-unit quaternion, a
        rotation that is not orthonormal with det +1, a last row that is not [0, 0, 0, 1].
        """
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"extrinsic file {path} cannot be read: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"extrinsic file {path}: expected a mapping, got {type(data)}")
        place, params = "", data
        nodes = [
            k
            for k, v in data.items()
            if isinstance(v, dict)
            and isinstance(v.get("ros__parameters"), dict)
            and "camera_extrinsic" in v["ros__parameters"]
        ]
        if len(nodes) > 1:
            raise ConfigError(
                f"extrinsic file {path}: several nodes hold camera_extrinsic {nodes}; give a "
                "file with one"
            )
        if nodes:
            place, params = f"{nodes[0]}.ros__parameters.", data[nodes[0]]["ros__parameters"]
        fields = [k for k in ("camera_extrinsic", "T_base_camera") if k in params]
        if len(fields) != 1:
            raise ConfigError(
                f"extrinsic file {path}: needs exactly one of camera_extrinsic [x, y, z, qx, qy, "
                f"qz, qw] or T_base_camera (4x4), top level or in a node's ros__parameters; "
                f"found {fields or 'neither'}"
            )
        name = place + fields[0]
        frames = {}
        for key in ("base_frame", "camera_frame"):
            value = params.get(key)
            if value is not None:
                if not isinstance(value, str) or not value:
                    raise ConfigError(f"extrinsic file {path}: {place}{key}={value!r} is invalid")
                frames[key] = value
        value = params[fields[0]]
        try:
            if fields[0] == "camera_extrinsic":
                ext = cls.from_param(name, value, **frames)
            else:
                ext = cls.from_matrix(value, **frames)
        except ConfigError as exc:
            text = str(exc) if str(exc).startswith(name) else f"{name} is invalid: {exc}"
            raise ConfigError(f"extrinsic file {path}: {text}") from None
        return ext, f"{path}#{name}"

    def to_json(self) -> dict[str, object]:
        """``{"T_base_camera": 4x4 rows, "base_frame", "camera_frame"}`` (for metadata)."""
        return {
            "T_base_camera": self.matrix.tolist(),
            "base_frame": self.base_frame,
            "camera_frame": self.camera_frame,
        }

    @property
    def rotation(self) -> np.ndarray:
        """``(3, 3)`` rotation of the camera frame in the base frame."""
        return self._rotation

    @property
    def translation(self) -> np.ndarray:
        """``(3,)`` camera origin in the base frame (m)."""
        return self._translation

    def inverse(self) -> CameraExtrinsics:
        """``T_camera_base`` (frames swapped)."""
        T = np.eye(4)
        T[:3, :3] = self._rotation.T
        T[:3, 3] = -self._rotation.T @ self._translation
        return CameraExtrinsics(T, base_frame=self.camera_frame, camera_frame=self.base_frame)

    def points_to_base(self, points: object) -> np.ndarray:
        """``(..., 3)`` camera-frame points (m) -> base frame. NaN rows stay NaN (missing)."""
        p = np.asarray(points, dtype=np.float64)
        if p.ndim < 1 or p.shape[-1] != 3:
            raise InputError(f"points must have shape (..., 3), got {p.shape}")
        if np.isinf(p).any():
            raise InputError("points contain inf")
        return p @ self._rotation.T + self._translation

    def pose_to_base(self, R: object, p: object) -> tuple[np.ndarray, np.ndarray]:
        """A camera-frame pose (``(..., 3, 3)`` rotation, ``(..., 3)`` position) in the base
        frame: ``(R_base, p_base)``."""
        rot = np.asarray(R, dtype=np.float64)
        pos = np.asarray(p, dtype=np.float64)
        if rot.shape[-2:] != (3, 3) or pos.shape[-1:] != (3,) or rot.shape[:-2] != pos.shape[:-1]:
            raise InputError(
                f"pose must be R (..., 3, 3) and p (..., 3) with matching batch shapes, got "
                f"{rot.shape} and {pos.shape}"
            )
        if not (np.isfinite(rot).all() and np.isfinite(pos).all()):
            raise InputError("pose contains NaN/inf")
        return self._rotation @ rot, self.points_to_base(pos)
