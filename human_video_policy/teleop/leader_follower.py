"""Leader-arm teleoperation: leader joint states -> follower joint commands.

How the VITRA robot data was collected (a kinematically matching leader arm moved by hand, the
follower mirroring it). Per follower joint ``j`` fed by leader joint ``l``::

    q_follower[j] = offset[j] + sign[j] * scale[j] * q_leader[l]      (clipped to the limits)

plus an optional gripper mapped linearly from the leader's gripper range onto the follower's
(e.g. a WidowX leader's finger or gripper servo -> the follower's ``left_finger`` metres),
clipped to the follower's range.

Safety rules of :class:`LeaderFollower`, checked every step:

- **deadman**: nothing is commanded while ``enabled`` is false; releasing it ends following;
- **stale leader**: no leader reading, or one older than ``max_leader_age_s`` -> no command
  (the follower's controller watchdog holds) and following ends;
- **alignment on engage**: following starts only when every mapped arm joint is within
  ``engage_tolerance_rad`` of the follower's measured position. Otherwise ``align="refuse"``
  sends nothing and says which joint is off by how much (the operator moves the leader to the
  follower), and ``align="ramp"`` moves the command from the follower's position toward the
  leader at ``ramp_velocity`` rad/s until they meet exactly, then follows. The gripper is not
  part of the check (it follows at once; the controller's velocity limit still applies);
- **leader jump**: while following, a mapped target farther than ``max_jump_rad`` from the
  previous command (an encoder glitch, a wrong message) ends following: re-alignment needed.

The follower's controller (safety layer) still clamps positions, velocity and acceleration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.validation import check_choice, check_positive, check_range

ALIGN_MODES = ("refuse", "ramp")


def _floats(name: str, value: Sequence[float], count: int) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} is invalid: must be {count} numbers") from None
    if len(out) != count or not np.isfinite(out).all():
        raise ConfigError(f"{name}={list(value)!r} is invalid: must be {count} finite numbers")
    return out


@dataclass(frozen=True)
class GripperMap:
    """Linear gripper mapping; ``*_closed``/``*_open`` are positions (rad or m) of each side.

    Attributes:
        leader_joint: the leader's gripper joint name in its joint states.
        follower_joint: the follower's gripper joint name in its commands.
        leader_closed, leader_open: leader positions for a closed and an open gripper (differ).
        follower_closed, follower_open: the follower's (WidowX left_finger: 0.015 / 0.037 m).
    """

    leader_joint: str
    follower_joint: str
    leader_closed: float
    leader_open: float
    follower_closed: float
    follower_open: float

    def __post_init__(self) -> None:
        for name in ("leader_joint", "follower_joint"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"gripper {name}={getattr(self, name)!r} is invalid: a name")
        for name in ("leader_closed", "leader_open", "follower_closed", "follower_open"):
            _floats(f"gripper {name}", [getattr(self, name)], 1)
        if self.leader_open == self.leader_closed:
            raise ConfigError(
                f"gripper leader_open={self.leader_open} is invalid: must differ from "
                f"leader_closed={self.leader_closed}"
            )

    def follower_position(self, leader_position: float) -> float:
        t = (leader_position - self.leader_closed) / (self.leader_open - self.leader_closed)
        t = min(max(t, 0.0), 1.0)
        return self.follower_closed + t * (self.follower_open - self.follower_closed)


@dataclass(frozen=True)
class LeaderFollowerConfig:
    """Joint mapping and safety settings of :class:`LeaderFollower` (validated on construction).

    Attributes:
        leader_joints: leader joint feeding each follower joint, in follower order.
        follower_joints: follower arm joints, in the order commands are sent.
        follower_lower, follower_upper: follower position limits (rad), same order.
        signs: +1 or -1 per follower joint (a leader mounted or wired the other way round).
        scales: factor per follower joint (> 0; 1 for a kinematically identical leader).
        offsets: added per follower joint (rad): leader zero != follower zero.
        gripper: optional :class:`GripperMap`; None = no gripper.
        engage_tolerance_rad: largest |mapped leader - follower| per arm joint that may start
            following (rad).
        align: "refuse" (wait until the operator aligns the leader) or "ramp" (move the
            follower to the leader at ``ramp_velocity``).
        ramp_velocity: rad/s of the alignment ramp (align="ramp").
        max_leader_age_s: a leader reading older than this is stale: no command (s).
        max_jump_rad: while following, a target this far from the previous command ends
            following (rad).
    """

    leader_joints: tuple[str, ...]
    follower_joints: tuple[str, ...]
    follower_lower: tuple[float, ...]
    follower_upper: tuple[float, ...]
    signs: tuple[float, ...] = ()
    scales: tuple[float, ...] = ()
    offsets: tuple[float, ...] = ()
    gripper: GripperMap | None = None
    engage_tolerance_rad: float = 0.15
    align: str = "refuse"
    ramp_velocity: float = 0.3
    max_leader_age_s: float = 0.1
    max_jump_rad: float = 0.3
    _n: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        follower = tuple(self.follower_joints)
        leader = tuple(self.leader_joints)
        n = len(follower)
        if n == 0 or len(set(follower)) != n or not all(isinstance(j, str) for j in follower):
            raise ConfigError(f"follower_joints={list(follower)} is invalid: non-empty, unique")
        if len(leader) != n:
            raise ConfigError(
                f"leader_joints={list(leader)} is invalid: one leader joint per follower joint "
                f"({n}: {list(follower)})"
            )
        object.__setattr__(self, "follower_joints", follower)
        object.__setattr__(self, "leader_joints", leader)
        object.__setattr__(self, "_n", n)
        lower = _floats("follower_lower", self.follower_lower, n)
        upper = _floats("follower_upper", self.follower_upper, n)
        if not all(lo < hi for lo, hi in zip(lower, upper, strict=True)):
            raise ConfigError("follower_upper must exceed follower_lower for every joint")
        object.__setattr__(self, "follower_lower", lower)
        object.__setattr__(self, "follower_upper", upper)
        signs = _floats("signs", self.signs or (1.0,) * n, n)
        if any(s not in (1.0, -1.0) for s in signs):
            raise ConfigError(f"signs={list(signs)} is invalid: each must be +1 or -1")
        scales = _floats("scales", self.scales or (1.0,) * n, n)
        if any(s <= 0.0 for s in scales):
            raise ConfigError(f"scales={list(scales)} is invalid: each must be > 0")
        offsets = _floats("offsets", self.offsets or (0.0,) * n, n)
        object.__setattr__(self, "signs", signs)
        object.__setattr__(self, "scales", scales)
        object.__setattr__(self, "offsets", offsets)
        if self.gripper is not None:
            if not isinstance(self.gripper, GripperMap):
                raise ConfigError("gripper must be a GripperMap or None")
            if self.gripper.follower_joint in follower:
                raise ConfigError(
                    f"gripper follower_joint {self.gripper.follower_joint!r} is also an arm joint"
                )
        check_range("engage_tolerance_rad", self.engage_tolerance_rad, 1e-4, 1.0)
        check_choice("align", self.align, ALIGN_MODES)
        check_range("ramp_velocity", self.ramp_velocity, 1e-3, 2.0)
        check_positive("max_leader_age_s", self.max_leader_age_s)
        check_range("max_jump_rad", self.max_jump_rad, 1e-3, 3.2)


@dataclass(frozen=True)
class LeaderReading:
    """One leader joint state: names, positions (rad / m) and when it arrived (s, any clock
    that ``LeaderFollower.step``'s ``now`` uses)."""

    names: tuple[str, ...]
    positions: np.ndarray
    received_s: float


@dataclass(frozen=True)
class FollowerStep:
    """What to send this step. ``arm`` None = send nothing (the controller holds).

    ``state``: disabled | stale_leader | no_follower_state | misaligned | aligning | following |
    leader_jump. ``reason``: one line for the log and /diagnostics.
    """

    state: str
    arm: np.ndarray | None = None
    gripper: float | None = None
    reason: str = ""


class LeaderFollower:
    """Leader -> follower with the safety rules of the module docstring; one per follower."""

    def __init__(self, config: LeaderFollowerConfig) -> None:
        self.config = config
        c = config
        self._signs_scales = np.array(c.signs) * np.array(c.scales)
        self._offsets = np.array(c.offsets)
        self._lower = np.array(c.follower_lower)
        self._upper = np.array(c.follower_upper)
        self._following = False
        self._ramp: np.ndarray | None = None
        self._last_command: np.ndarray | None = None
        self._last_step_s: float | None = None

    @property
    def following(self) -> bool:
        return self._following

    def map(self, reading: LeaderReading) -> tuple[np.ndarray, float | None]:
        """Follower arm target (clipped to the limits) and gripper position for a reading."""
        names = tuple(reading.names)
        positions = np.asarray(reading.positions, dtype=np.float64).ravel()
        if len(names) != positions.size:
            raise InputError(f"leader state has {len(names)} names but {positions.size} positions")
        index = {n: i for i, n in enumerate(names)}
        needed = list(self.config.leader_joints)
        if self.config.gripper is not None:
            needed.append(self.config.gripper.leader_joint)
        missing = [n for n in needed if n not in index]
        if missing:
            raise InputError(f"leader state lacks joints {missing} (has {list(names)})")
        values = positions[[index[n] for n in needed]]
        if not np.isfinite(values).all():
            bad = [n for n, v in zip(needed, values, strict=True) if not np.isfinite(v)]
            raise InputError(f"leader state is not finite for joints {bad}")
        n = len(self.config.leader_joints)
        arm = np.clip(self._offsets + self._signs_scales * values[:n], self._lower, self._upper)
        gripper = None
        if self.config.gripper is not None:
            gripper = self.config.gripper.follower_position(float(values[n]))
        return arm, gripper

    def _stop(self, state: str, reason: str) -> FollowerStep:
        self._following = False
        self._ramp = None
        self._last_command = None
        return FollowerStep(state, reason=reason)

    def step(
        self,
        now_s: float,
        enabled: bool,
        leader: LeaderReading | None,
        follower_q: np.ndarray | None,
    ) -> FollowerStep:
        """One control step: what to command now (see the module docstring for the rules).

        ``follower_q``: the follower's measured arm positions in ``follower_joints`` order, or
        None when unknown. A malformed leader reading is an InputError (nothing is commanded).
        """
        dt = 0.0 if self._last_step_s is None else min(max(now_s - self._last_step_s, 0.0), 0.1)
        self._last_step_s = now_s
        if not enabled:
            return self._stop("disabled", "deadman released")
        if leader is None:
            return self._stop("stale_leader", "no leader joint state yet")
        age = now_s - leader.received_s
        if age > self.config.max_leader_age_s:
            return self._stop(
                "stale_leader",
                f"leader joint state is {age:.3f} s old (max_leader_age_s "
                f"{self.config.max_leader_age_s:g})",
            )
        try:
            target, gripper = self.map(leader)
        except InputError:
            self._stop("stale_leader", "malformed leader state")
            raise
        if self._following:
            assert self._last_command is not None
            jump = np.abs(target - self._last_command)
            if float(jump.max()) > self.config.max_jump_rad:
                k = int(np.argmax(jump))
                return self._stop(
                    "leader_jump",
                    f"leader target of {self.config.follower_joints[k]} jumped "
                    f"{jump[k]:.3f} rad in one step (max_jump_rad {self.config.max_jump_rad:g}); "
                    "re-align to continue",
                )
            self._last_command = target
            return FollowerStep("following", target, gripper, "following the leader")
        if follower_q is None:
            return FollowerStep("no_follower_state", reason="no follower joint state yet")
        q = np.asarray(follower_q, dtype=np.float64).ravel()
        if q.shape != target.shape or not np.isfinite(q).all():
            raise InputError(
                f"follower state must be {target.size} finite positions, got {q.tolist()}"
            )
        start = q if self._ramp is None else self._ramp
        error = np.abs(target - start)
        # A ramp ends where it meets the leader exactly (no last jump of up to the tolerance).
        tolerance = self.config.engage_tolerance_rad if self._ramp is None else 1e-9
        if float(error.max()) <= tolerance:
            self._following = True
            self._ramp = None
            self._last_command = target
            return FollowerStep("following", target, gripper, "aligned: following the leader")
        k = int(np.argmax(error))
        detail = (
            f"{self.config.follower_joints[k]} differs by {error[k]:.3f} rad (leader "
            f"{target[k]:.3f}, follower {start[k]:.3f}; engage_tolerance_rad "
            f"{self.config.engage_tolerance_rad:g})"
        )
        if self.config.align == "refuse":
            return FollowerStep("misaligned", reason=f"move the leader to the follower: {detail}")
        limit = self.config.ramp_velocity * dt
        step = np.clip(target - start, -limit, limit)
        self._ramp = start + step
        if float(np.abs(target - self._ramp).max()) <= 1e-9:
            self._following, self._ramp, self._last_command = True, None, target
            return FollowerStep("following", target, gripper, "ramp done: following the leader")
        return FollowerStep("aligning", self._ramp.copy(), gripper, f"ramping: {detail}")
