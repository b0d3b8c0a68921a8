"""The simulated WidowX 250s: a MuJoCo world stepped in real time behind the robot's topics.

The world is the reach scene (``task`` empty, the default) or any benchmark task of the WidowX
(``task:=pick_place``, ``push``...; docs/benchmark.md) at a generalisation ``level``. With
``expert:=true`` the task's privileged scripted expert runs in this process (it reads the true
object poses, which only the sim knows) and publishes its chunks on /policy/action_chunk at
10 Hz of sim time, in place of a policy node: the graph that records expert demonstrations
through the real executor and topics (``hvp launch sim_task``).

Publishes, all stamped with sim time:
- /clock (rosgraph_msgs/Clock) every physics tick, so nodes with use_sim_time follow the sim;
- /arm/joint_states (8 state joints) at ``joint_state_rate_hz`` (Hz of sim time);
- /camera/camera/color/image_raw (rgb8), /camera/camera/color/camera_info and
  /camera/camera/aligned_depth_to_color/image_raw (16UC1, mm; realsense-ros names) at
  ``camera_rate_hz``, rendered offscreen (MUJOCO_GL=egl unless set);
- /sim/target_pose (reach only) and /sim/ee_pose (geometry_msgs/PoseStamped, base frame) at the
  camera rate, so tests and evaluators can see the task;
- /sim/applied_commands (sensor_msgs/JointState, 7 command joints) every physics tick: what the
  safety layer let through to the actuators, so ``hvp replay`` can reproduce the arm exactly;
- /sim/episode (std_msgs/String, JSON, transient-local) at every episode start and then once a
  second of sim time: episode number, seed, task, level, robot and the sim time of its reset
  (``start_time``), so every bag (also one whose recorder joined late) says which initial
  state it starts from (``hvp replay`` rebuilds it);
- /sim/state (human_video_policy_msgs/SimState) every physics tick of a task episode: the
  privileged MuJoCo state, what the scripted expert reads when policy_node runs it
  (``policy:=scripted_expert``, sim/scripted_expert_policy.py).

Subscribes /arm/joint_commands (JointState positions of the 7 command joints, matched by name),
which reach the simulated arm only through the controller core and safety layer of every real
robot (control/joint_controller.py, safety/layer.py; docs/safety.md): clamped to the joint
limits, speed (``velocity_scale``) and acceleration bounds, held by the watchdog when commands
stop, refused when stamped too old; /safety/estop (any QoS) latches an e-stop that brakes and
holds the arm, released with ``~/reset_estop``.
a command with missing joints or NaN is ignored, counted on /diagnostics and warned about
(throttled); a command stamped before the current episode's reset (computed for the previous
episode, arrived after the reset) is dropped and counted. The ``~/reset`` service
(std_srvs/Trigger) starts a new episode with the next seed: arm home, new target. Sim time
(/clock and every stamp) keeps running across episodes, so nodes with use_sim_time never see
time jump back. Every new episode is announced on /episode/start
(std_msgs/UInt32, the episode number) so executors drop the previous episode's chunks. Just
before, the episode that ends publishes its outcome on /episode/success (std_msgs/Bool: true if
the target was reached, ``ReachTask.is_success``, or the task's success detector held, at any
time in it), once per episode, also
the last one of an ``episodes`` run; ``hvp record`` stores it in the bag (``hvp.success``).

With ``episodes`` > 0 the node runs that many episodes by itself: an episode ends
``success_hold_s`` after the target is reached, or at ``episode_timeout_s``; each result is
logged, and after the last one a summary line (success rate, mean time) is logged and the node
exits 0, which ends the graph (`hvp launch sim_widowx episodes:=10`).

The physics loop runs in the main thread (the OpenGL context of the renderer belongs to the
thread that created it); callbacks only hand data to it.
"""

from __future__ import annotations

import os

if "MUJOCO_GL" not in os.environ:
    os.environ["MUJOCO_GL"] = "egl"  # headless rendering; must be set before mujoco is imported

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from geometry_msgs.msg import PoseStamped
from human_video_policy_msgs.msg import ActionChunk as ActionChunkMsg
from human_video_policy_msgs.msg import SimState
from rclpy.duration import Duration
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, String, UInt32
from std_srvs.srv import Trigger

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.nodes.base import DiagnosticsReport, HvpNode, Level, RateMeter, run_node
from human_video_policy.nodes.conversions import (
    action_chunk_to_msg,
    camera_info_from_intrinsics,
    depth_to_image,
    joint_state_to_numpy,
    numpy_to_joint_state,
    position_to_pose,
    rgb_to_image,
    seconds_to_stamp,
    sim_state_to_msg,
    stamp_to_seconds,
)
from human_video_policy.nodes.estop_input import EstopInput
from human_video_policy.nodes.qos import CLOCK, LATCHED, RELIABLE, SENSOR_DATA
from human_video_policy.nodes.safety_params import declare_safety_params
from human_video_policy.robots.widowx import BASE_FRAME
from human_video_policy.sim.scripted_expert_policy import snapshot
from human_video_policy.sim.world_driver import SIM_SAFETY_DEFAULTS, sim_controller
from human_video_policy.validation import check_int_range, check_range

EXPERT_PERIOD_S = 0.1  # the expert's chunk rate: the policies' 10 Hz, in sim time

# Ticks may fall this far behind the wall clock before the sim gives up catching up (and runs
# slower than real time for a moment instead of bursting).
_MAX_LAG_S = 0.1


class SimNode(HvpNode):
    """Owns a WidowXWorld and plays it in real time; see the module docstring."""

    default_name = "sim"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        self.joint_state_rate_hz = self.param(
            "joint_state_rate_hz",
            100.0,
            "Physics ticks and /arm/joint_states messages per second of sim time (Hz).",
            lambda n, v: check_range(n, v, 100.0, 1000.0),
        )
        self.camera_rate_hz = self.param(
            "camera_rate_hz",
            15.0,
            "Camera frames (colour, depth, camera_info) per second of sim time (Hz).",
            lambda n, v: check_range(n, v, 10.0, 30.0),
        )
        width = self.param(
            "image_width",
            128,
            "Rendered image width (pixels). 128 matches what the default policy was trained on.",
            lambda n, v: check_int_range(n, v, 16, 1280),
        )
        height = self.param(
            "image_height",
            128,
            "Rendered image height (pixels).",
            lambda n, v: check_int_range(n, v, 16, 960),
        )
        self.episode_seed = self.param(
            "episode_seed",
            0,
            "Seed of the first episode's target layout; each ~/reset uses the next seed.",
            lambda n, v: check_int_range(n, v, 0),
        )
        self.realtime_factor = self.param(
            "realtime_factor",
            1.0,
            "Sim seconds per wall-clock second (1 = real time).",
            lambda n, v: check_range(n, v, 0.05, 10.0),
        )
        self.episode_timeout_s = self.param(
            "episode_timeout_s",
            0.0,
            "Start a new episode after this much sim time (s); 0 = never (use ~/reset).",
            lambda n, v: check_range(n, v, 0.0, 3600.0),
        )
        self.publish_depth = self.param(
            "publish_depth", True, "Render and publish the aligned depth image (16UC1, mm)."
        )
        self.episodes_to_run = self.param(
            "episodes",
            0,
            "Run this many episodes, log a summary and exit 0 (ends the graph); 0 = run until "
            "stopped, new episodes only by ~/reset or episode_timeout_s.",
            lambda n, v: check_int_range(n, v, 0),
        )
        self.success_hold_s = self.param(
            "success_hold_s",
            0.5,
            "With episodes > 0: sim seconds to keep running after the target is reached before "
            "the next episode starts.",
            lambda n, v: check_range(n, v, 0.0, 60.0),
        )
        self.results_path = self.param(
            "results_path",
            "",
            "With episodes > 0: write every episode's outcome (seed, success, task score, stages, "
            "times) to this JSON file at the end (hvp bench through ROS reads it); empty = none.",
        )
        if self.results_path and not Path(self.results_path).parent.is_dir():
            raise ConfigError(
                f"parameter results_path={self.results_path!r} is invalid: its folder does not "
                "exist"
            )
        if self.episodes_to_run and self.episode_timeout_s <= 0:
            raise ConfigError(
                f"episodes={self.episodes_to_run} needs episode_timeout_s > 0 (got "
                f"{self.episode_timeout_s}), otherwise a failed episode never ends"
            )

        safety = declare_safety_params(self, SIM_SAFETY_DEFAULTS, "physics ticks")
        self.task = self.param(
            "task",
            "",
            "Benchmark task to simulate (pick_place, push, press_button, drawer...; `hvp bench "
            "--list`); empty = the reach scene.",
        )
        self.level = self.param(
            "level",
            "position",
            "Generalisation level of the task's episodes (position, scene, background, "
            "new_object); tasks only.",
        )
        self.run_expert = self.param(
            "expert",
            False,
            "Run the task's privileged scripted expert here and publish its chunks on "
            "/policy/action_chunk (instead of a policy node).",
        )
        if self.task:
            from human_video_policy.sim.task_world import TaskWorld, TaskWorldConfig
            from human_video_policy.sim.tasks import Level

            Level.parse(self.level)
            self.world = TaskWorld(
                TaskWorldConfig(task=self.task, image_width=width, image_height=height)
            )
        else:
            from human_video_policy.sim.widowx_world import WidowXWorld, WidowXWorldConfig

            self.world = WidowXWorld(WidowXWorldConfig(image_width=width, image_height=height))
        self._reset_world()
        self._time_offset = 0.0
        self._episode_start = 0.0
        # The arm is commanded through the controller core and safety layer every real robot
        # has (limits, speed and acceleration bounds, watchdog, latched e-stop).
        self.controller = sim_controller(
            self.world,
            lambda: self.sim_time,
            "widowx",
            self.joint_state_rate_hz,
            **safety,
        )
        self._expert = None
        if self.run_expert:
            if self.task:
                self._expert = self.world.task.expert(self.world)
            else:
                from human_video_policy.sim.reach_expert import PrivilegedExpertSource

                self._expert = PrivilegedExpertSource(self.world)
        self.intrinsics = self.world.camera_intrinsics()

        self._clock_pub = self.create_publisher(Clock, "/clock", CLOCK)
        self._sim_state_pub = self.create_publisher(SimState, "/sim/state", RELIABLE)
        self._joint_pub = self.create_publisher(JointState, "/arm/joint_states", RELIABLE)
        self._image_pub = self.create_publisher(
            Image, "/camera/camera/color/image_raw", SENSOR_DATA
        )
        self._info_pub = self.create_publisher(
            CameraInfo, "/camera/camera/color/camera_info", SENSOR_DATA
        )
        self._depth_pub = self.create_publisher(
            Image, "/camera/camera/aligned_depth_to_color/image_raw", SENSOR_DATA
        )
        self._target_pub = self.create_publisher(PoseStamped, "/sim/target_pose", RELIABLE)
        self._ee_pub = self.create_publisher(PoseStamped, "/sim/ee_pose", RELIABLE)
        self._episode_pub = self.create_publisher(UInt32, "/episode/start", RELIABLE)
        self._outcome_pub = self.create_publisher(Bool, "/episode/success", RELIABLE)
        self._episode_info_pub = self.create_publisher(String, "/sim/episode", LATCHED)
        self._applied_pub = self.create_publisher(JointState, "/sim/applied_commands", RELIABLE)
        self._chunk_pub = (
            self.create_publisher(ActionChunkMsg, "/policy/action_chunk", RELIABLE)
            if self._expert is not None
            else None
        )
        self._next_expert_time = 0.0
        self.create_subscription(JointState, "/arm/joint_commands", self._on_command, RELIABLE)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.estop = EstopInput(self, self.controller.set_estop)
        self.create_service(Trigger, "~/reset_estop", self._on_reset_estop)

        # Hand-over from callbacks (spin thread) to the physics loop (main thread).
        self._lock = threading.Lock()
        self._reset_requests: list[threading.Event] = []
        # Counters and meters for /diagnostics.
        self.commands_applied = 0
        self.commands_rejected = 0
        self.stale_commands = 0
        self.episodes = 1
        self.successes = 0
        self._episode_success = False
        self._outcome_sent = False  # /episode/success published for the current episode
        self._success_time: float | None = None
        self.results: list[tuple[bool, float]] = []  # (reached, sim seconds to reach or end)
        self._episode_records: list[dict[str, Any]] = []
        self.late_ticks = 0
        self.render_ms = 0.0
        self._joint_rate = RateMeter()
        self._camera_rate = RateMeter()
        self._wall_rtf = float("nan")
        self._target_distance = self._distance()
        self._publish_episode_info()
        self.enable_diagnostics()
        what = f"task {self.task} ({self.level})" if self.task else "reach"
        expert = ", scripted expert publishing chunks" if self._expert is not None else ""
        self.get_logger().info(
            f"WidowX sim ready: {what}{expert}, seed {self.episode_seed}, {width}x{height} "
            f"camera at {self.camera_rate_hz:g} Hz, joint states at "
            f"{self.joint_state_rate_hz:g} Hz, realtime factor {self.realtime_factor:g}"
        )

    # -- the world: reach or a task ---------------------------------------------------------
    def _reset_world(self) -> None:
        if self.task:
            self.world.reset(self.episode_seed, self.level)
        else:
            self.world.reset(self.episode_seed)

    def _world_success(self) -> bool:
        return self.world.evaluate().success if self.task else self.world.success()

    def _distance(self) -> float:
        """Reach: end effector to target (m); tasks: NaN (their score is on /diagnostics)."""
        return float("nan") if self.task else self.world.target_distance()

    def _publish_episode_info(self) -> None:
        info = {
            "episode": self.episodes,
            "seed": self.episode_seed,
            "task": self.task or "reach",
            "level": self.level if self.task else "position",
            "robot": "widowx",
            "expert": self._expert is not None,
            "start_time": self._episode_start,  # sim time (s) of the episode's reset
        }
        self._episode_info_pub.publish(String(data=json.dumps(info)))
        self._next_info_time = self.sim_time + 1.0

    def _publish_expert_chunk(self) -> None:
        """The scripted expert's chunk for the current state, every EXPERT_PERIOD_S."""
        if self._expert is None or self.sim_time < self._next_expert_time - 1e-9:
            return
        self._next_expert_time = self.sim_time + EXPERT_PERIOD_S
        chunk = self._expert.predict_chunk(None, self.world.joint_positions(), self.sim_time)
        self._chunk_pub.publish(action_chunk_to_msg(chunk, seconds_to_stamp(self.sim_time)))

    # -- callbacks (spin thread) -----------------------------------------------------------
    def _on_command(self, msg: JointState) -> None:
        stamp = stamp_to_seconds(msg.header.stamp)
        if 0.0 < stamp < self._episode_start:
            # Computed for the previous episode (sent before the reset, arrived after): it
            # would move the new episode's arm toward the old one's goal. Unstamped (0) ones
            # are accepted.
            with self._lock:
                self.stale_commands += 1
            return
        try:
            q = joint_state_to_numpy(msg, self.world.joint_names)
        except InputError as exc:
            with self._lock:
                self.commands_rejected += 1
            self.get_logger().warning(
                f"ignoring /arm/joint_commands: {exc}", throttle_duration_sec=2.0
            )
            return
        self.controller.submit(q, stamp if stamp > 0.0 else self.sim_time)

    def _on_reset_estop(
        self, _request: Trigger.Request, response: Trigger.Response
    ) -> Trigger.Response:
        response.success, response.message = self.controller.reset_estop()
        self.get_logger().info(f"e-stop reset requested: {response.message}")
        return response

    def _on_reset(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        done = threading.Event()
        with self._lock:
            self._reset_requests.append(done)
        if done.wait(timeout=5.0):
            response.success = True
            response.message = f"episode {self.episodes} started (seed {self.world.seed})"
        else:
            response.success = False
            response.message = "the physics loop did not answer within 5 s"
        return response

    # -- physics loop (main thread) --------------------------------------------------------
    @property
    def sim_time(self) -> float:
        """Seconds of simulation since the node started (keeps running across episodes)."""
        return self._time_offset + self.world.time

    def run(self, stop: threading.Event) -> None:
        tick_sim = 1.0 / self.joint_state_rate_hz
        tick_wall = tick_sim / self.realtime_factor
        camera_period = 1.0 / self.camera_rate_hz
        next_wall = time.monotonic()
        wall_start, sim_start = next_wall, self.sim_time
        self._publish_tick(camera=True)
        next_camera = self.sim_time + camera_period
        while not stop.is_set():
            next_wall += tick_wall
            delay = next_wall - time.monotonic()
            if delay > 0:
                stop.wait(delay)
            elif -delay > _MAX_LAG_S:
                self.late_ticks += 1
                next_wall = time.monotonic()
            if stop.is_set():
                break
            self._handle_requests()
            self.world.step(tick_sim)
            camera = self.sim_time >= next_camera - 1e-9
            if camera:
                next_camera += camera_period
                if next_camera <= self.sim_time:  # fell behind: no burst of frames
                    next_camera = self.sim_time + camera_period
            self._publish_tick(camera)
            self._publish_expert_chunk()
            if self.sim_time >= self._next_info_time:
                self._publish_episode_info()
            self._track_episode()
            if self.episodes_to_run and len(self.results) >= self.episodes_to_run:
                self._log_summary()
                # the last outcome reaches a recorder before the process ends
                self._outcome_pub.wait_for_all_acked(Duration(seconds=1.0))
                return
            elapsed = time.monotonic() - wall_start
            if elapsed > 1.0:
                self._wall_rtf = (self.sim_time - sim_start) / elapsed

    def _handle_requests(self) -> None:
        """One controller tick (the newest command through the safety layer to the world's
        actuators), then any reset request."""
        with self._lock:
            resets, self._reset_requests = self._reset_requests, []
        tick = self.controller.tick(self.sim_time)
        if tick.decision is not None:
            if not tick.decision.holding:
                self.commands_applied += 1
            self._applied_pub.publish(
                numpy_to_joint_state(
                    self.world.joint_names, tick.decision.positions, seconds_to_stamp(self.sim_time)
                )
            )
        if resets:
            self._new_episode()
            for done in resets:
                done.set()

    def _end_episode(self) -> None:
        """Publish the ending episode's outcome on /episode/success (once per episode)."""
        if self._outcome_sent:
            return
        self._outcome_sent = True
        self._outcome_pub.publish(Bool(data=self._success_time is not None))

    def _new_episode(self) -> None:
        self._end_episode()
        if self.episodes_to_run and len(self.results) >= self.episodes_to_run:
            return  # the run is over; keep the final state for the summary
        self.episode_seed += 1
        self.episodes += 1
        self._episode_success = False
        self._outcome_sent = False
        self._time_offset += self.world.time  # /clock never jumps back
        self._success_time = None
        self._reset_world()
        self._episode_start = self.sim_time
        # The arm was put home behind the controller's back: start again from there, holding
        # (a command of the previous episode not applied yet is dropped with it).
        self.controller.reseed()
        self._next_expert_time = self.sim_time
        self._episode_pub.publish(UInt32(data=self.episodes))
        self._publish_episode_info()
        self.get_logger().info(f"episode {self.episodes}: reset with seed {self.episode_seed}")

    def _track_episode(self) -> None:
        self._target_distance = self._distance()
        if not self._episode_success and self._world_success():
            self._episode_success = True
            self._success_time = self.world.time
            self.successes += 1
            self.get_logger().info(
                f"episode {self.episodes}: {'success' if self.task else 'target reached'} "
                f"after {self.world.time:.2f} s"
            )
        held = (
            self._success_time is not None
            and self.world.time - self._success_time >= self.success_hold_s
        )
        timed_out = self.episode_timeout_s > 0 and self.world.time >= self.episode_timeout_s
        if self.episodes_to_run and (held or timed_out):
            reached = self._success_time is not None
            self.results.append((reached, self._success_time if reached else self.world.time))
            self._episode_records.append(self._episode_record(reached))
            outcome = f"SUCCESS in {self._success_time:.2f} s" if reached else "TIMEOUT"
            self.get_logger().info(
                f"episode {len(self.results)}/{self.episodes_to_run}: {outcome} "
                f"(seed {self.episode_seed})"
            )
            self._new_episode()
        elif timed_out:
            self._new_episode()

    def _episode_record(self, success: bool) -> dict[str, Any]:
        """One finished episode for ``results_path`` (the fields of sim.task_episode's
        TaskEpisode)."""
        if self.task:
            score = self.world.evaluate()
            stages = [name for name, reached in score.stages if reached]
            value = float(score.score)
        else:
            stages, value = (["reach"] if success else []), float(success)
        return {
            "task": self.task or "reach",
            "robot": "widowx",
            "level": self.level if self.task else "position",
            "seed": self.episode_seed,
            "success": success,
            "score": value,
            "stages": stages,
            "time_to_success": self._success_time,
            "duration_s": self.world.time,
            "chunks": 0,
        }

    def _write_results(self) -> None:
        if not self.results_path:
            return
        path = Path(self.results_path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self._episode_records, indent=1) + "\n")
        tmp.replace(path)
        self.get_logger().info(f"episode results written to {path}")

    def _log_summary(self) -> None:
        self._write_results()
        reached = [t for ok, t in self.results if ok]
        rate = 100.0 * len(reached) / len(self.results)
        mean = f"{sum(reached) / len(reached):.2f} s" if reached else "n/a"
        self.get_logger().info(
            f"SUMMARY: {len(reached)}/{len(self.results)} episodes succeeded "
            f"({rate:.0f} % success), mean time to success {mean}"
        )

    def _publish_tick(self, camera: bool) -> None:
        world = self.world
        stamp = seconds_to_stamp(self.sim_time)
        self._clock_pub.publish(Clock(clock=stamp))
        if self.task:  # the privileged state, for a scripted expert outside this process
            self._sim_state_pub.publish(
                sim_state_to_msg(snapshot(world, self.task, "widowx", self.level), stamp)
            )
        self._joint_pub.publish(
            numpy_to_joint_state(
                world.state_joint_names,
                world.joint_positions(),
                stamp,
                velocities=world.joint_velocities(),
            )
        )
        self._joint_rate.tick()
        if not camera:
            return
        start = time.perf_counter()
        frame = self.intrinsics.frame_id
        self._image_pub.publish(rgb_to_image(world.render_rgb(), stamp, frame))
        self._info_pub.publish(camera_info_from_intrinsics(self.intrinsics, stamp))
        if self.publish_depth:
            self._depth_pub.publish(depth_to_image(world.render_depth(), stamp, frame))
        self.render_ms = (time.perf_counter() - start) * 1e3
        self._camera_rate.tick()
        if not self.task:
            self._target_pub.publish(position_to_pose(world.target_position(), stamp, BASE_FRAME))
        self._ee_pub.publish(position_to_pose(world.ee_position(), stamp, BASE_FRAME))

    # -- reports ---------------------------------------------------------------------------
    def diagnostics_report(self) -> DiagnosticsReport:
        world = self.world
        values = {
            "sim_time_s": self.sim_time,
            "episode_time_s": world.time,
            "realtime_factor_measured": self._wall_rtf,
            "joint_state_rate_hz_wall": self._joint_rate.rate_hz,
            "camera_rate_hz_wall": self._camera_rate.rate_hz,
            "render_ms_last": self.render_ms,
            "late_ticks": self.late_ticks,
            "commands_applied": self.commands_applied,
            "commands_rejected": self.commands_rejected,
            "stale_commands_dropped": self.stale_commands,
            "estop_latched": self.controller.layer.estop_latched,
            "safety_holding": self.controller.layer.holding,
            "safety_hold_reason": self.controller.layer.hold_reason,
            **{f"safety_{k}": v for k, v in vars(self.controller.safety_counters).items()},
            "episode": self.episodes,
            "episode_seed": self.episode_seed,
            "successes": self.successes,
            "target_distance_m": self._target_distance,
        }
        if self.task:
            score = self.world.task.tracker
            values["task"] = self.task
            values["level"] = self.level
            values["stages_reached"] = sum(score.reached)
        if self.controller.layer.estop_latched:
            return DiagnosticsReport(Level.WARN, "e-stop latched: holding", values)
        if self.commands_rejected:
            return DiagnosticsReport(
                Level.WARN, f"{self.commands_rejected} invalid joint commands ignored", values
            )
        return DiagnosticsReport(Level.OK, "running", values)

    def close(self) -> None:
        self.world.close()


def main(args: list[str] | None = None) -> int:
    return run_node(SimNode, args)


if __name__ == "__main__":
    sys.exit(main())
