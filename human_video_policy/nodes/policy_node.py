"""Policy inference at a fixed rate, on a thread of its own: observation -> ActionChunk.

Runs any runtime policy (``policy``: ``exported`` = the model at ``model_path``, default the
committed DiT ``assets/policies/widowx_reach_dit``; ``replay``; or an installed plugin's name,
runtime/policy_plugins.py). At start it checks the policy against the robot (``robot``: its
state joints must be among the robot's, its actions among the robot's command joints; exit 2
naming the mismatch otherwise), picks the execution provider (``auto``: TensorRT > CUDA > CPU,
whichever this onnxruntime has; the one in use is on /policy/status and /diagnostics) and
warms the policy up on a zero observation before it reports ready, so the first real chunk is
not the slow one (lerobot PR #4223: a 0.7 s first call made the queue skip 21 of 30 actions).

Each tick of ``rate_hz`` (node clock: sim time under use_sim_time) assembles one observation
(runtime/observation_sync.py): the newest image with the joint state, and depth image when the
policy needs one, closest to its stamp within ``sync_tolerance_s``, plus the prompt embedding
(/prompt/embedding, transient-local) when the policy needs one, the task instruction
(``instruction``, then latched /task/instruction) for a language-conditioned policy, and the
sim's privileged /sim/state for the scripted expert. Inputs missing, invalid, older
than ``max_input_age_s`` or out of sync: no chunk, /policy/status says WAITING_FOR_INPUT and
why. Otherwise the observation goes to the inference thread (runtime/inference_worker.py), and
the chunk is published on /policy/action_chunk when it is ready, with ``observation_stamp`` =
the image's stamp; ticks that find the thread still busy wait for it, so inference never
blocks the node's inputs, reports or watchdog.

Safety at the seam: a policy that throws, returns NaN/inf, values beyond ``max_abs_action`` or
a chunk of the wrong shape or names publishes nothing (counted, ERROR on /policy/status and
/diagnostics with the reason); a call that has not returned after ``inference_timeout_s`` is
reported as hung and its chunk, if it ever comes, is dropped. Without new chunks the executor
plays out its last chunk and the controllers' watchdogs hold the robot. The next good chunk
puts the node back to RUNNING.

``real_time_chunking`` (run with the executor's ``mode:=rtc``): each chunk continues the one
before it over the rows that execute while it is computed (runtime/rtc.py), planned for the
median measured latency; /episode/start starts free again. The executor's commands
(/arm/joint_commands, /executor/chunk_start) are watched for the smoothness figures on
/policy/status and /diagnostics (runtime/smoothness.py).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from human_video_policy_msgs.msg import ActionChunk as ActionChunkMsg
from human_video_policy_msgs.msg import PolicyStatus, PromptEmbedding, SimState
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String, UInt32

from human_video_policy.camera.pinhole import IDENTITY_POSE_PARAM, CameraExtrinsics
from human_video_policy.errors import ConfigError, InputError, ModelLoadError
from human_video_policy.nodes.base import DiagnosticsReport, HvpNode, Level, RateMeter, run_node
from human_video_policy.nodes.conversions import (
    action_chunk_to_msg,
    depth_image_to_metres,
    image_to_rgb,
    joint_state_to_numpy,
    sim_state_from_msg,
    stamp_to_seconds,
)
from human_video_policy.nodes.qos import LATCHED, RELIABLE, SENSOR_DATA
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.runtime.inference_worker import InferenceWorker
from human_video_policy.runtime.latency import LatencyStats
from human_video_policy.runtime.observation_sync import Observation, ObservationSync, Refusal
from human_video_policy.runtime.onnx_policy import DEFAULT_MAX_ABS_ACTION, PolicyOutputError
from human_video_policy.runtime.providers import (
    PROVIDER_CHOICES,
    available_providers,
    choose_providers,
)
from human_video_policy.runtime.rtc import DEFAULT_GUIDANCE_ROWS
from human_video_policy.runtime.smoothness import SmoothnessMonitor
from human_video_policy.runtime.wrist_pose_mapping import WRIST_POSE_KIND, WristPoseMapping
from human_video_policy.validation import check_choice, check_int_range, check_range

#: Longest task instruction accepted from /task/instruction (characters).
MAX_INSTRUCTION_CHARS = 1000

_STATE_NAMES = {
    PolicyStatus.STATE_STARTING: "STARTING",
    PolicyStatus.STATE_WAITING_FOR_INPUT: "WAITING_FOR_INPUT",
    PolicyStatus.STATE_RUNNING: "RUNNING",
    PolicyStatus.STATE_ERROR: "ERROR",
}


def default_model_path() -> str:
    """The committed default policy (may not exist in a checkout without assets)."""
    from human_video_policy.resources import default_policy_path

    return str(default_policy_path())


class PolicyNode(HvpNode):
    """Runs a runtime policy on synchronised observations at ``rate_hz``; see the module
    docstring."""

    default_name = "policy"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        model_path = self.param(
            "model_path",
            "",
            "Exported policy: a directory from `hvp export` (policy.json + graphs) or a .onnx "
            "file (docs/CONTRACTS.md); empty = the committed default policy.",
        )
        self.rate_hz = self.param(
            "rate_hz",
            10.0,
            "Inference ticks per second of the node clock (Hz).",
            lambda n, v: check_range(n, v, 0.1, 200.0),
        )
        self.max_input_age_s = self.param(
            "max_input_age_s",
            0.5,
            "No chunk (and a deadline miss) when the newest image is older than this (s).",
            lambda n, v: check_range(n, v, 0.001, 60.0),
        )
        sync_tolerance_s = self.param(
            "sync_tolerance_s",
            0.05,
            "Largest stamp difference between the image and the joint state (and depth) one "
            "observation pairs (s).",
            lambda n, v: check_range(n, v, 0.0001, 10.0),
        )
        self.inference_timeout_s = self.param(
            "inference_timeout_s",
            1.0,
            "An inference that has not returned after this long is reported as hung and its "
            "chunk dropped (s, monotonic clock).",
            lambda n, v: check_range(n, v, 0.001, 600.0),
        )
        provider_choice = self.param(
            "execution_provider",
            "auto",
            f"ONNX Runtime execution provider: one of {PROVIDER_CHOICES} (auto = TensorRT > "
            "CUDA > CPU, whichever is available).",
            lambda n, v: check_choice(n, v, PROVIDER_CHOICES),
        )
        threads = self.param(
            "intra_op_threads",
            1,
            "Threads ONNX Runtime uses for one inference (1 keeps jitter low on small machines).",
            lambda n, v: check_int_range(n, v, 1, 64),
        )
        self.max_abs_action = self.param(
            "max_abs_action",
            DEFAULT_MAX_ABS_ACTION,
            "Model outputs beyond +-this (rad / m), or NaN/inf, are refused and counted.",
            lambda n, v: check_range(n, v, 1e-6, 1e9),
        )
        plugin = self.param(
            "policy",
            "exported",
            "Runtime policy to run (runtime/policy_plugins.py): exported (model_path), replay "
            "(policy_args dataset, episode), scripted_expert (sim only) or an installed "
            "plugin's name.",
        )
        plugin_args = self.param(
            "policy_args",
            "",
            "JSON object of keyword arguments for the runtime policy; for exported, the model's "
            'options, e.g. {"inference_steps": 50} for a diffusion policy.',
        )
        rtc = self.param(
            "real_time_chunking",
            False,
            "Generate each chunk to continue the previous one over the inference delay "
            "(runtime/rtc.py); run the executor with mode:=rtc.",
        )
        rtc_guidance_rows = self.param(
            "rtc_guidance_rows",
            DEFAULT_GUIDANCE_ROWS,
            "real_time_chunking: chunk rows after the frozen delay rows over which the pull "
            "toward the previous chunk decays (more = smoother plans, slower answers to new "
            "observations; the chunk's horizon = Black et al.'s whole overlap).",
            lambda n, v: check_int_range(n, v, 0, 1000),
        )
        from human_video_policy.robots.spec import get_robot, robot_names

        robot = self.param(
            "robot",
            "widowx",
            f"Robot the chunks are for: one of {robot_names()}; the policy's joints are checked "
            "against it at start.",
            lambda n, v: check_choice(n, v, robot_names()),
        )
        instruction = self.param(
            "instruction",
            "",
            "Task instruction for a language-conditioned policy until /task/instruction says "
            "otherwise (latched std_msgs/String); such a policy waits while it is empty.",
        )
        camera_frame = self.param(
            "camera_frame",
            "",
            "Wrist-pose policies: frame_id of chunks in the camera's optical frame, taken to the "
            "base frame with camera_extrinsic; empty = such chunks are refused.",
        )
        T_base_camera = self.param(
            "camera_extrinsic",
            list(IDENTITY_POSE_PARAM),
            "Camera optical frame in the base frame: [x, y, z (m), qx, qy, qz, qw].",
            lambda n, v: CameraExtrinsics.from_param(n, v).matrix,
        )
        smoothness_window = self.param(
            "smoothness_window",
            500,
            "Executor commands the smoothness figures on /policy/status are computed over.",
            lambda n, v: check_int_range(n, v, 10, 100_000),
        )
        self.model_path = model_path or default_model_path()
        self.policy = self._make_policy(plugin, plugin_args, provider_choice, threads)
        meta = self.policy.metadata
        spec = get_robot(robot)
        # A wrist-pose policy (method A) runs through IK: it observes the wrist pose computed
        # from the measured joints and its chunks become joint chunks (runtime/wrist_pose_mapping).
        self.mapping = None
        if _action_space_kind(meta.action_space) == WRIST_POSE_KIND:
            if meta.action_space not in spec.action_spaces:
                raise ConfigError(
                    f"the policy's action space {meta.action_space!r} is not one robot "
                    f"{robot!r} acts in ({list(spec.action_spaces)}) (parameter robot)"
                )
            self.mapping = WristPoseMapping.for_robot(robot, camera_frame, T_base_camera)
        else:
            _check_against_robot(meta, spec)
        self.provider = str(getattr(self.policy, "providers", ["(not reported)"])[0])
        self.needs_image = bool(getattr(self.policy, "needs_image", True))
        self.needs_depth = bool(getattr(self.policy, "needs_depth", False))
        self.needs_prompt = bool(getattr(self.policy, "needs_prompt", False))
        self.needs_sim_state = bool(getattr(self.policy, "needs_sim_state", False))
        self.needs_instruction = bool(getattr(self.policy, "needs_instruction", False))
        self.prompt_encoder_id = str(getattr(self.policy, "prompt_encoder_id", "") or "")
        if rtc:
            from human_video_policy.runtime.rtc import RealTimeChunker

            # rows executed between two inferences: the period over the chunk's row spacing
            rows = max(1, round(1.0 / self.rate_hz / meta.dt))
            self.policy = RealTimeChunker(
                self.policy, execute_rows=rows, guidance_rows=rtc_guidance_rows
            )
        self.policy_state_names = tuple(meta.state_names)
        # what the joint states are read for: the policy's joints, or all of the robot's when
        # the policy's state is computed from them
        self.state_names = tuple(spec.state_joints if self.mapping else meta.state_names)
        # The state is assembled from the joint states of each controller it comes from (the
        # arm's and the hand's for rm75_xhand): (namespace, the policy's state joints there).
        self.state_parts = [
            (ns, tuple(n for n in self.state_names if n in joints))
            for ns, _, joints in spec.joint_topics()
            if any(n in joints for n in self.state_names)
        ]
        concatenated = [n for _, names in self.state_parts for n in names]
        self._state_order = np.array([concatenated.index(n) for n in self.state_names])
        self.period_s = 1.0 / self.rate_hz
        self.sync = ObservationSync(
            sync_tolerance_s,
            self.max_input_age_s,
            needs_image=self.needs_image,
            needs_depth=self.needs_depth,
            needs_prompt=self.needs_prompt,
            needs_sim_state=self.needs_sim_state,
            needs_instruction=self.needs_instruction,
            state_parts=tuple(ns for ns, _ in self.state_parts),
        )

        # Status and counters (written by the executor thread and the inference thread).
        self._lock = threading.Lock()
        self._status = PolicyStatus.STATE_STARTING
        self._status_message = "warming up the policy"
        self._last_observation = -np.inf
        self._hang_reported = False
        self._episode = 0  # /episode/start count (executor thread)
        self._policy_episode = 0  # the episode the policy's memory belongs to (inference thread)
        self.latency = LatencyStats()
        self.inference = LatencyStats()
        self.warmup_ms = float("nan")
        self._chunk_rate = RateMeter()
        self.smoothness = SmoothnessMonitor(smoothness_window)
        self.chunks_published = 0
        self.deadline_misses = 0
        self.stale_inputs = 0
        self.unsynchronised_inputs = 0
        self.busy_ticks = 0
        self.invalid_images = 0
        self.invalid_states = 0
        self.invalid_prompts = 0
        self.inference_errors = 0
        self.invalid_outputs = 0
        self.inference_timeouts = 0
        self.late_chunks_dropped = 0

        self._chunk_pub = self.create_publisher(ActionChunkMsg, "/policy/action_chunk", RELIABLE)
        self._status_pub = self.create_publisher(PolicyStatus, "/policy/status", RELIABLE)
        if self.needs_image:
            self.create_subscription(
                Image, "/camera/camera/color/image_raw", self._on_image, SENSOR_DATA
            )
        if self.needs_depth:
            self.create_subscription(
                Image,
                "/camera/camera/aligned_depth_to_color/image_raw",
                self._on_depth,
                SENSOR_DATA,
            )
        if self.needs_prompt:
            self.create_subscription(PromptEmbedding, "/prompt/embedding", self._on_prompt, LATCHED)
        if self.needs_sim_state:
            self.create_subscription(SimState, "/sim/state", self._on_sim_state, RELIABLE)
        if self.needs_instruction:
            self.sync.instruction = instruction.strip()
            self.create_subscription(String, "/task/instruction", self._on_instruction, LATCHED)
        for index, (ns, _) in enumerate(self.state_parts):
            self.create_subscription(
                JointState,
                f"{ns}/joint_states",
                lambda msg, i=index: self._on_joint_state(msg, i),
                RELIABLE,
            )
        self.create_subscription(UInt32, "/episode/start", self._on_episode_start, RELIABLE)
        self.create_subscription(JointState, "/arm/joint_commands", self._on_command, RELIABLE)
        self.create_subscription(Time, "/executor/chunk_start", self._on_chunk_start, RELIABLE)

        self.worker = InferenceWorker(self._on_inference_done, name="policy-inference")
        self._warming_up = True
        self.worker.submit(self._warmup)
        self.create_timer(self.period_s, self._tick)  # node clock: follows /clock in sim
        self.create_wall_timer(1.0, self._publish_status)
        self.enable_diagnostics()
        self.get_logger().info(
            f"policy {self.model_path} ({meta.action_space}, horizon {meta.horizon} x "
            f"{meta.dims}, dt {meta.dt:g} s, image {meta.image_height}x{meta.image_width}) on "
            f"{self.provider} at {self.rate_hz:g} Hz for {robot}"
        )

    def _make_policy(self, plugin: str, plugin_args: str, provider_choice: str, threads: int):
        from human_video_policy.runtime.policy_plugins import (
            make_runtime_policy,
            parse_policy_args,
        )

        try:
            providers = choose_providers(provider_choice, available_providers())
        except ConfigError as exc:
            raise ConfigError(f"parameter execution_provider={provider_choice!r}: {exc}") from None
        arguments = parse_policy_args(plugin_args)
        if plugin == "exported":
            arguments.update(
                path=self.model_path,
                providers=providers,
                intra_op_threads=threads,
                max_abs_action=self.max_abs_action,
            )
        else:
            self.model_path = f"{plugin} {plugin_args}".strip()
        try:
            return make_runtime_policy(plugin, **arguments)
        except ModelLoadError as exc:
            raise ModelLoadError(f"parameter model_path={self.model_path!r}: {exc}") from None

    # -- inputs (executor thread) ------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        try:
            rgb = image_to_rgb(msg)
        except InputError as exc:
            self.invalid_images += 1
            self.sync.image.refuse(f"last image invalid: {exc}")
            self.get_logger().warning(f"ignoring image: {exc}", throttle_duration_sec=2.0)
            return
        self.sync.image.add(stamp_to_seconds(msg.header.stamp), rgb)

    def _on_depth(self, msg: Image) -> None:
        try:
            depth = depth_image_to_metres(msg)
        except InputError as exc:
            self.invalid_images += 1
            self.sync.depth.refuse(f"last depth image invalid: {exc}")
            self.get_logger().warning(f"ignoring depth image: {exc}", throttle_duration_sec=2.0)
            return
        self.sync.depth.add(stamp_to_seconds(msg.header.stamp), depth)

    def _on_joint_state(self, msg: JointState, part: int) -> None:
        ns, names = self.state_parts[part]
        stream = self.sync.states[part]
        try:
            q = joint_state_to_numpy(msg, names)
        except InputError as exc:
            self.invalid_states += 1
            stream.refuse(f"last joint state invalid ({ns}/joint_states): {exc}")
            self.get_logger().warning(f"ignoring joint state: {exc}", throttle_duration_sec=2.0)
            return
        stream.add(stamp_to_seconds(msg.header.stamp), q)

    def _on_instruction(self, msg: String) -> None:
        text = msg.data.strip()
        if len(text) > MAX_INSTRUCTION_CHARS:
            self.get_logger().error(
                f"instruction of {len(text)} characters refused (at most {MAX_INSTRUCTION_CHARS})"
            )
            return
        self.sync.instruction = text
        self.get_logger().info(f"task instruction: {text!r}")

    def _on_sim_state(self, msg: SimState) -> None:
        self.sync.sim_state.add(stamp_to_seconds(msg.header.stamp), sim_state_from_msg(msg))

    def _on_prompt(self, msg: PromptEmbedding) -> None:
        try:
            tokens = prompt_tokens(msg, self.prompt_encoder_id)
        except InputError as exc:
            self.invalid_prompts += 1
            self.sync.clear_prompt(f"prompt embedding refused: {exc}")
            self.get_logger().error(f"prompt embedding refused: {exc}")
            return
        if tokens is None:
            self.sync.clear_prompt(
                f"the prompt encoder published no embedding for {msg.source!r} (see its "
                "/diagnostics): holding"
            )
            self.get_logger().warning(f"prompt cleared ({msg.source!r})")
            return
        self.sync.set_prompt(tokens)
        self.get_logger().info(f"prompt {msg.source!r}: {tokens.shape[0]} x {tokens.shape[1]}")

    def _on_command(self, msg: JointState) -> None:
        try:
            stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            self.smoothness.add_command(stamp_ns, np.asarray(msg.position, dtype=np.float64))
        except InputError:
            pass  # not our figures to police: the controllers refuse bad commands

    def _on_chunk_start(self, msg: Time) -> None:
        self.smoothness.mark_chunk_start(msg.sec * 1_000_000_000 + msg.nanosec)

    def _on_episode_start(self, msg: UInt32) -> None:
        self.sync.reset()
        self.smoothness.reset()
        # The policy forgets the last episode on the inference thread, before its next call
        # (never under a call in flight), and a chunk of the last episode still being computed
        # is dropped when it comes.
        self._episode += 1

    # -- inference ---------------------------------------------------------------------------
    def _tick(self) -> None:
        busy_s = self.worker.busy_for()
        if self.worker.busy:
            self.busy_ticks += 1
            if busy_s > self.inference_timeout_s and not self._hang_reported:
                self._hang_reported = True
                self.inference_timeouts += 1
                what = "warm-up" if self._warming_up else "inference"
                self._set_status(
                    PolicyStatus.STATE_ERROR,
                    f"policy {what} has not returned for {busy_s:.2f} s (inference_timeout_s="
                    f"{self.inference_timeout_s:g}): no chunks, the robot holds",
                )
                self.get_logger().error(self._status_message)
            return
        if self._warming_up:
            return
        observation = self.sync.assemble(self.now_s())
        if isinstance(observation, Refusal):
            if observation.kind == "stale":
                self.stale_inputs += 1
                self.deadline_misses += 1
            elif observation.kind == "unsynchronised":
                self.unsynchronised_inputs += 1
            self._set_status(PolicyStatus.STATE_WAITING_FOR_INPUT, observation.reason)
            return
        if observation.stamp <= self._last_observation:
            return  # nothing new since the last chunk
        self._last_observation = observation.stamp
        episode = self._episode
        self.worker.submit(lambda: self._infer(observation, episode))

    def _warmup(self) -> str:
        """Run the policy once on a zero observation (its own ``warmup`` when it has one)."""
        start = time.perf_counter()
        if hasattr(self.policy, "warmup"):
            self.policy.warmup()
        else:
            meta = self.policy.metadata
            image = np.zeros((max(meta.image_height, 1), max(meta.image_width, 1), 3), np.uint8)
            state = np.zeros(len(meta.state_names), np.float32)
            zero = Observation(
                0.0, state, depth=np.zeros(image.shape[:2], np.float32),
                prompt=np.zeros((1, 1), np.float32),
            )  # fmt: skip
            image = image if self.needs_image else None
            self.policy.predict_chunk(image, state, 0.0, **self._extras(zero))
        if hasattr(self.policy, "reset"):
            self.policy.reset()
        self.warmup_ms = (time.perf_counter() - start) * 1e3
        return "warmup"

    def _extras(self, observation: Observation) -> dict[str, Any]:
        """The optional inputs the policy asked for, as keywords of ``predict_chunk``."""
        extras: dict[str, Any] = {}
        if self.needs_depth:
            extras["depth"] = observation.depth
        if self.needs_prompt:
            extras["prompt"] = observation.prompt
        if self.needs_sim_state:
            extras["sim_state"] = observation.sim_state
        if self.needs_instruction:
            extras["instruction"] = observation.instruction
        return extras

    def _infer(
        self, observation: Observation, episode: int
    ) -> tuple[ActionChunk, Observation, int]:
        if episode != self._policy_episode:
            if hasattr(self.policy, "reset"):
                self.policy.reset()  # the next chunk continues nothing of the last episode
            self._policy_episode = episode
        state = observation.state[self._state_order]
        robot_q = state
        if self.mapping is not None:
            state = self.mapping.state(robot_q, self.policy_state_names)
        chunk = self.policy.predict_chunk(
            observation.image,
            state,
            observation_stamp=observation.stamp,
            **self._extras(observation),
        )
        check_chunk(chunk, self.policy.metadata, self.max_abs_action)
        if self.mapping is not None:  # wrist poses -> joints by IK; an unreachable row refuses
            chunk = self.mapping.convert(chunk, robot_q)
            check_chunk(chunk, _joint_metadata(chunk), self.max_abs_action)
        return chunk, observation, episode

    def _on_inference_done(self, result: Any, error: BaseException | None, seconds: float) -> None:
        """Inference thread: publish a good chunk; count and report anything else."""
        hung, self._hang_reported = self._hang_reported, False
        if self._warming_up:
            self._warming_up = False
            if error is not None:
                self.inference_errors += 1
                self._report_error(f"warm-up failed: {type(error).__name__}: {error}")
            else:
                self._set_status(
                    PolicyStatus.STATE_WAITING_FOR_INPUT,
                    f"warmed up in {self.warmup_ms:.0f} ms; waiting for the first observation",
                )
            return
        if error is not None:
            self.inference_errors += 1
            if isinstance(error, PolicyOutputError):
                self.invalid_outputs += 1
            self._report_error(f"no chunk published: {type(error).__name__}: {error}")
            return
        chunk, observation, episode = result
        if episode != self._episode:
            self.late_chunks_dropped += 1
            return  # computed for the episode before: the new one starts afresh
        if hung or seconds > self.inference_timeout_s:
            self.late_chunks_dropped += 1
            self._report_error(
                f"dropped a chunk that took {seconds:.2f} s (inference_timeout_s="
                f"{self.inference_timeout_s:g}): computed on old data"
            )
            return
        publish_stamp = self.get_clock().now()
        self._chunk_pub.publish(action_chunk_to_msg(chunk, publish_stamp.to_msg()))
        inference_ms = seconds * 1e3
        latency_s = publish_stamp.nanoseconds * 1e-9 - observation.stamp
        with self._lock:
            self.chunks_published += 1
            self._chunk_rate.tick()
            self.inference.add(inference_ms)
            self.latency.add(latency_s * 1e3)
            if inference_ms > self.period_s * 1e3:
                self.deadline_misses += 1
        self.smoothness.add_latency(latency_s * 1e3)
        if hasattr(self.policy, "record_latency") and np.isfinite(latency_s) and latency_s >= 0:
            self.policy.record_latency(latency_s)
        self._set_status(PolicyStatus.STATE_RUNNING, "running")

    def _report_error(self, message: str) -> None:
        self._set_status(PolicyStatus.STATE_ERROR, message)
        self.get_logger().error(message, throttle_duration_sec=2.0)

    # -- reports -----------------------------------------------------------------------------
    def _set_status(self, state: int, message: str) -> None:
        with self._lock:
            changed = state != self._status or message != self._status_message
            self._status, self._status_message = state, message
        if changed:
            if state == PolicyStatus.STATE_WAITING_FOR_INPUT:
                self.get_logger().info(f"waiting for input: {message}", throttle_duration_sec=5.0)
            self._publish_status()

    def _publish_status(self) -> None:
        msg = PolicyStatus()
        msg.header.stamp = self.now_msg()
        with self._lock:
            msg.state, msg.message = self._status, self._status_message
            msg.latency_ms_last = _finite_or_nan(self.latency.last)
            msg.latency_ms_median = _finite_or_nan(self.latency.median)
            msg.latency_ms_p99 = _finite_or_nan(self.latency.p99)
            msg.inference_ms_median = _finite_or_nan(self.inference.median)
            msg.inference_ms_p99 = _finite_or_nan(self.inference.p99)
            msg.chunks_published = msg.chunk_index = self.chunks_published
        msg.model_path = str(self.model_path)
        msg.action_space = self.policy.metadata.action_space
        msg.execution_provider = self.provider
        msg.deadline_misses = self.deadline_misses
        msg.stale_inputs = self.stale_inputs
        msg.inference_errors = self.inference_errors
        report = self.smoothness.report()
        nan = float("nan")
        msg.boundary_step = report.boundary_step if report else nan
        msg.boundary_jump = report.boundary_jump if report else nan
        msg.within_step = report.within_step if report else nan
        msg.jerk_rms = report.jerk_rms if report else nan
        msg.control_period_p99_ms = report.period_p99_ms if report else nan
        msg.control_period_jitter_ms = report.period_jitter_ms if report else nan
        msg.control_deadline_misses = report.deadline_misses if report else 0
        self._status_pub.publish(msg)

    def diagnostics_report(self) -> DiagnosticsReport:
        with self._lock:
            state, message = self._status, self._status_message
            values: dict[str, Any] = {
                "state": _STATE_NAMES.get(state, str(state)),
                "chunk_rate_hz_wall": self._chunk_rate.rate_hz,
                "latency_ms_last": self.latency.last,
                "latency_ms_median": self.latency.median,
                "latency_ms_p99": self.latency.p99,
                "inference_ms_last": self.inference.last,
                "inference_ms_median": self.inference.median,
                "inference_ms_p99": self.inference.p99,
                "chunks_published": self.chunks_published,
            }
        values.update(
            {
                "warmup_ms": self.warmup_ms,
                "deadline_misses": self.deadline_misses,
                "stale_inputs": self.stale_inputs,
                "unsynchronised_inputs": self.unsynchronised_inputs,
                "busy_ticks": self.busy_ticks,
                "invalid_images": self.invalid_images,
                "invalid_joint_states": self.invalid_states,
                "invalid_prompts": self.invalid_prompts,
                "inference_errors": self.inference_errors,
                "invalid_outputs": self.invalid_outputs,
                "inference_timeouts": self.inference_timeouts,
                "late_chunks_dropped": self.late_chunks_dropped,
                "model_path": self.model_path,
                "execution_provider": self.provider,
                "real_time_chunking": hasattr(self.policy, "record_latency"),
            }
        )
        report = self.smoothness.report()
        if report is not None:
            for key in ("boundary_step", "boundary_jump", "within_step", "jerk_rms"):
                values[f"smoothness_{key}"] = getattr(report, key)
            values["control_period_p99_ms"] = report.period_p99_ms
            values["control_period_jitter_ms"] = report.period_jitter_ms
            values["control_deadline_misses"] = report.deadline_misses
        level = {
            PolicyStatus.STATE_RUNNING: Level.OK,
            PolicyStatus.STATE_ERROR: Level.ERROR,
        }.get(state, Level.WARN)
        return DiagnosticsReport(level, message, values)

    def close(self) -> None:
        self.worker.close(timeout=1.0)  # a hung policy call is a daemon: it does not block exit
        super().close()


def check_chunk(chunk: Any, meta: Any, max_abs_action: float) -> None:
    """PolicyOutputError unless ``chunk`` is an ActionChunk of the policy's own action space,
    names and a finite range: a plugin's wrong output is refused here, never published."""
    if not isinstance(chunk, ActionChunk):
        raise PolicyOutputError(f"the policy returned {type(chunk).__name__}, not an ActionChunk")
    if chunk.action_space != meta.action_space or tuple(chunk.names) != tuple(meta.action_names):
        raise PolicyOutputError(
            f"the chunk's action space {chunk.action_space!r} / names {list(chunk.names)} differ "
            f"from the policy's {meta.action_space!r} / {list(meta.action_names)}"
        )
    actions = np.asarray(chunk.actions)
    if actions.ndim != 2 or actions.shape[0] < 1 or actions.shape[1] != len(meta.action_names):
        raise PolicyOutputError(
            f"the chunk is {actions.shape}, expected (rows >= 1, {len(meta.action_names)})"
        )
    if not np.all(np.isfinite(actions)):
        raise PolicyOutputError("the chunk holds NaN or inf")
    if (largest := float(np.abs(actions).max())) > max_abs_action:
        raise PolicyOutputError(f"a chunk value {largest:g} exceeds max_abs_action")


def prompt_tokens(msg: PromptEmbedding, expected_encoder_id: str = "") -> np.ndarray | None:
    """The embedding's (num_tokens, dims) float32 tokens; None for an empty embedding (the
    encoder cleared the prompt); InputError for a malformed one or another encoder's."""
    if msg.num_tokens == 0 or msg.dims == 0:
        return None
    if len(msg.data) != msg.num_tokens * msg.dims:
        raise InputError(
            f"{len(msg.data)} values for {msg.num_tokens} x {msg.dims} tokens ({msg.source!r})"
        )
    if expected_encoder_id and msg.encoder_id != expected_encoder_id:
        raise InputError(
            f"encoder {msg.encoder_id!r} is not the one the policy was trained with "
            f"({expected_encoder_id!r})"
        )
    tokens = np.asarray(msg.data, dtype=np.float32).reshape(msg.num_tokens, msg.dims)
    if not np.all(np.isfinite(tokens)):
        raise InputError(f"the embedding of {msg.source!r} holds NaN or inf")
    return tokens


def _check_against_robot(meta: Any, robot: Any) -> None:
    """ConfigError unless the policy's state and action joints are the robot's."""
    unknown_state = [n for n in meta.state_names if n not in robot.state_joints]
    unknown_action = [n for n in meta.action_names if n not in robot.command_joints]
    if unknown_state or unknown_action:
        raise ConfigError(
            f"the policy ({meta.action_space}) does not fit robot {robot.name!r}: "
            + "; ".join(
                text
                for text in (
                    unknown_state
                    and f"state joints {unknown_state} are not its joints "
                    f"{list(robot.state_joints)}",
                    unknown_action
                    and f"actions {unknown_action} are not its command joints "
                    f"{list(robot.command_joints)} (this node publishes joint-position chunks)",
                )
                if text
            )
            + " (parameter robot)"
        )


def _action_space_kind(name: str) -> str:
    from human_video_policy.policies.action_spaces import get_action_space

    try:
        return get_action_space(name).kind
    except ConfigError:
        return ""  # an action space this project does not register: checked by joint names


def _joint_metadata(chunk: ActionChunk) -> Any:
    """What check_chunk compares a converted joint chunk with: its own names and space."""
    from types import SimpleNamespace

    return SimpleNamespace(action_space=chunk.action_space, action_names=tuple(chunk.names))


def _finite_or_nan(value: float) -> float:
    return float(value) if np.isfinite(value) else float("nan")


def main(args: list[str] | None = None) -> int:
    return run_node(PolicyNode, args)


if __name__ == "__main__":
    sys.exit(main())
