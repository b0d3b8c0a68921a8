"""Policy inference at a fixed rate: newest camera image + joint state -> ActionChunk.

Loads an exported policy (``model_path``: a ``hvp export`` directory or a .onnx file; default
the committed DiT ``assets/policies/widowx_reach_dit``) with :func:`runtime.load_policy`. A timer on
the node clock (sim time under use_sim_time) runs at ``rate_hz``; each tick takes the newest
image and joint state, runs the model, and publishes /policy/action_chunk with
``observation_stamp`` = the image's header stamp.

Inputs missing, invalid (e.g. NaN joint state) or older than ``max_input_age_s``: no chunk,
/policy/status says WAITING_FOR_INPUT and which input. Ticks whose inference takes longer than
the period, or whose inputs are stale, count as deadline misses. /diagnostics carries latency
(image stamp -> publish, and inference alone), rates and counters.

A missing or corrupt model file ends the node at start with exit code 2 and a clear message;
so does a model that loads but fails the runtime's self-test (NaN, inf or huge weights).

``real_time_chunking`` (run with the executor's ``mode:=rtc``): each chunk continues the one
before it over the rows that execute while it is computed (runtime/rtc.py: guided DDIM for a
diffusion policy, a blend for others), planned for the median measured latency (image stamp ->
publish); /episode/start starts free again.

A model output that is NaN/inf or beyond ``max_abs_action`` at run time is never published:
it is counted (``invalid_outputs`` on /diagnostics), /policy/status says ERROR with the first bad
value, and no chunk goes out, so the executor plays out and holds its last chunk and the
controller's watchdog holds the arm.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
from human_video_policy_msgs.msg import ActionChunk as ActionChunkMsg
from human_video_policy_msgs.msg import PolicyStatus
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import UInt32

from human_video_policy.errors import ConfigError, InputError, ModelLoadError
from human_video_policy.nodes.base import DiagnosticsReport, HvpNode, Level, RateMeter, run_node
from human_video_policy.nodes.conversions import (
    action_chunk_to_msg,
    image_to_rgb,
    joint_state_to_numpy,
    stamp_to_seconds,
)
from human_video_policy.nodes.qos import RELIABLE, SENSOR_DATA
from human_video_policy.runtime.latency import LatencyStats
from human_video_policy.runtime.onnx_policy import DEFAULT_MAX_ABS_ACTION, PolicyOutputError
from human_video_policy.validation import check_choice, check_int_range, check_range

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}

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
    """Runs an OnnxPolicy on the newest observation at ``rate_hz``; see the module docstring."""

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
            "Skip a tick (and count a deadline miss) when the image or joint state is older (s).",
            lambda n, v: check_range(n, v, 0.001, 60.0),
        )
        provider = self.param(
            "execution_provider",
            "cpu",
            f"ONNX Runtime execution provider: one of {sorted(PROVIDERS)}.",
            lambda n, v: check_choice(n, v, sorted(PROVIDERS)),
        )
        threads = self.param(
            "intra_op_threads",
            1,
            "Threads ONNX Runtime uses for one inference (1 keeps jitter low on small machines).",
            lambda n, v: check_int_range(n, v, 1, 64),
        )
        max_abs_action = self.param(
            "max_abs_action",
            DEFAULT_MAX_ABS_ACTION,
            "Model outputs beyond +-this (rad / m), or NaN/inf, are refused and counted.",
            lambda n, v: check_range(n, v, 1e-6, 1e9),
        )
        plugin = self.param(
            "policy",
            "exported",
            "Runtime policy to run (runtime/policy_plugins.py): exported (model_path), replay "
            "(policy_args dataset, episode) or an installed plugin's name.",
        )
        plugin_args = self.param(
            "policy_args",
            "",
            "JSON object of keyword arguments for the runtime policy (not for exported).",
        )
        rtc = self.param(
            "real_time_chunking",
            False,
            "Generate each chunk to continue the previous one over the inference delay "
            "(runtime/rtc.py); run the executor with mode:=rtc.",
        )
        self.model_path = model_path or default_model_path()

        from human_video_policy.runtime.policy_plugins import (
            make_runtime_policy,
            parse_policy_args,
        )

        _check_provider_available(provider)
        if plugin == "exported":
            arguments = {
                "path": self.model_path,
                "providers": PROVIDERS[provider],
                "intra_op_threads": threads,
                "max_abs_action": max_abs_action,
            }
        else:
            arguments = parse_policy_args(plugin_args)
            self.model_path = f"{plugin} {plugin_args}".strip()
        try:
            self.policy = make_runtime_policy(plugin, **arguments)
        except ModelLoadError as exc:
            raise ModelLoadError(f"parameter model_path={self.model_path!r}: {exc}") from None
        if hasattr(self.policy, "warmup"):
            self.policy.warmup()
        self.needs_image = getattr(self.policy, "needs_image", True)
        meta = self.policy.metadata
        if rtc:
            from human_video_policy.runtime.rtc import RealTimeChunker

            # rows executed between two inferences: the period over the chunk's row spacing
            rows = max(1, round(1.0 / self.rate_hz / meta.dt))
            self.policy = RealTimeChunker(self.policy, execute_rows=rows)
            self.create_subscription(UInt32, "/episode/start", self._on_episode_start, RELIABLE)
        self.state_names = tuple(meta.state_names)
        self.period_s = 1.0 / self.rate_hz

        self._chunk_pub = self.create_publisher(ActionChunkMsg, "/policy/action_chunk", RELIABLE)
        self._status_pub = self.create_publisher(PolicyStatus, "/policy/status", RELIABLE)
        self.create_subscription(Image, "/camera/color/image_raw", self._on_image, SENSOR_DATA)
        self.create_subscription(JointState, "/arm/joint_states", self._on_joint_state, RELIABLE)
        self.create_timer(self.period_s, self._tick)  # node clock: follows /clock in sim
        self.create_wall_timer(1.0, self._publish_status)

        # Newest inputs: (array, stamp seconds); None when missing. Errors say why.
        self._image: tuple[np.ndarray, float] | None = None
        self._state: tuple[np.ndarray, float] | None = None
        self._image_error = ""
        self._state_error = ""
        self._last_observation = -np.inf
        # Status and counters.
        self._status = PolicyStatus.STATE_STARTING
        self._status_message = (
            "waiting for the first tick (use_sim_time is true: is /clock published?)"
            if self.use_sim_time()
            else "waiting for the first tick"
        )
        self.latency = LatencyStats()
        self.inference = LatencyStats()
        self._chunk_rate = RateMeter()
        self.chunks_published = 0
        self.deadline_misses = 0
        self.stale_inputs = 0
        self.invalid_images = 0
        self.invalid_states = 0
        self.inference_errors = 0
        self.invalid_outputs = 0
        self.enable_diagnostics()
        self.get_logger().info(
            f"policy {self.model_path} ({meta.action_space}, horizon {meta.horizon} x "
            f"{meta.dims}, dt {meta.dt:g} s, image {meta.image_height}x{meta.image_width}) on "
            f"{getattr(self.policy, 'providers', ['(not reported)'])[0]} at {self.rate_hz:g} Hz"
        )

    # -- inputs ----------------------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        try:
            rgb = image_to_rgb(msg)
        except InputError as exc:
            self.invalid_images += 1
            self._image, self._image_error = None, f"last image invalid: {exc}"
            self.get_logger().warning(f"ignoring image: {exc}", throttle_duration_sec=2.0)
            return
        self._image, self._image_error = (rgb, stamp_to_seconds(msg.header.stamp)), ""

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            q = joint_state_to_numpy(msg, self.state_names)
        except InputError as exc:
            self.invalid_states += 1
            self._state, self._state_error = None, f"last joint state invalid: {exc}"
            self.get_logger().warning(f"ignoring joint state: {exc}", throttle_duration_sec=2.0)
            return
        self._state, self._state_error = (q, stamp_to_seconds(msg.header.stamp)), ""

    # -- inference -------------------------------------------------------------------------
    def _tick(self) -> None:
        now = self.now_s()
        image, state = self._image, self._state
        if not self.needs_image and state is not None:  # observation = the joint state
            image = (None, state[1])
        if image is None or state is None:
            missing = []
            if image is None:
                missing.append(self._image_error or "no image received on the image topic yet")
            if state is None:
                missing.append(self._state_error or "no joint state received yet")
            self._set_status(PolicyStatus.STATE_WAITING_FOR_INPUT, "; ".join(missing))
            return
        stale = [
            f"{what} is {now - stamp:.3f} s old (max_input_age_s={self.max_input_age_s:g})"
            for what, stamp in (("image", image[1]), ("joint state", state[1]))
            if now - stamp > self.max_input_age_s
        ]
        if stale:
            self.stale_inputs += 1
            self.deadline_misses += 1
            self._set_status(PolicyStatus.STATE_WAITING_FOR_INPUT, "; ".join(stale))
            return
        if image[1] <= self._last_observation:
            return  # no new image since the last chunk: nothing new to say
        start = time.perf_counter()
        try:
            chunk = self.policy.predict_chunk(image[0], state[0], observation_stamp=image[1])
        except PolicyOutputError as exc:
            self.invalid_outputs += 1
            self.inference_errors += 1
            self._set_status(PolicyStatus.STATE_ERROR, f"no chunk published: {exc}")
            self.get_logger().error(str(exc), throttle_duration_sec=2.0)
            return
        except InputError as exc:
            self.inference_errors += 1
            self._set_status(PolicyStatus.STATE_ERROR, f"inference refused the inputs: {exc}")
            self.get_logger().error(str(exc), throttle_duration_sec=2.0)
            return
        inference_ms = (time.perf_counter() - start) * 1e3
        publish_stamp = self.get_clock().now()
        self._chunk_pub.publish(action_chunk_to_msg(chunk, publish_stamp.to_msg()))
        self._last_observation = image[1]
        self.chunks_published += 1
        self._chunk_rate.tick()
        self.inference.add(inference_ms)
        latency_s = publish_stamp.nanoseconds * 1e-9 - image[1]
        self.latency.add(latency_s * 1e3)
        if hasattr(self.policy, "record_latency") and np.isfinite(latency_s) and latency_s >= 0:
            self.policy.record_latency(latency_s)
        if inference_ms > self.period_s * 1e3:
            self.deadline_misses += 1
        self._set_status(PolicyStatus.STATE_RUNNING, "running")

    def _on_episode_start(self, msg: UInt32) -> None:
        self.policy.reset()  # the next chunk continues nothing of the last episode

    # -- reports ---------------------------------------------------------------------------
    def _set_status(self, state: int, message: str) -> None:
        changed = state != self._status or message != self._status_message
        self._status, self._status_message = state, message
        if changed:
            if state == PolicyStatus.STATE_WAITING_FOR_INPUT:
                self.get_logger().info(f"waiting for input: {message}", throttle_duration_sec=5.0)
            self._publish_status()

    def _publish_status(self) -> None:
        msg = PolicyStatus()
        msg.header.stamp = self.now_msg()
        msg.state = self._status
        msg.message = self._status_message
        msg.model_path = str(self.model_path)
        msg.action_space = self.policy.metadata.action_space
        msg.latency_ms_last = _finite_or_nan(self.latency.last)
        msg.latency_ms_median = _finite_or_nan(self.latency.median)
        msg.latency_ms_p99 = _finite_or_nan(self.latency.p99)
        msg.chunks_published = self.chunks_published
        msg.deadline_misses = self.deadline_misses
        self._status_pub.publish(msg)

    def diagnostics_report(self) -> DiagnosticsReport:
        values = {
            "state": _STATE_NAMES.get(self._status, str(self._status)),
            "chunk_rate_hz_wall": self._chunk_rate.rate_hz,
            "latency_ms_last": self.latency.last,
            "latency_ms_median": self.latency.median,
            "latency_ms_p99": self.latency.p99,
            "inference_ms_last": self.inference.last,
            "inference_ms_median": self.inference.median,
            "inference_ms_p99": self.inference.p99,
            "chunks_published": self.chunks_published,
            "deadline_misses": self.deadline_misses,
            "stale_inputs": self.stale_inputs,
            "invalid_images": self.invalid_images,
            "invalid_joint_states": self.invalid_states,
            "inference_errors": self.inference_errors,
            "invalid_outputs": self.invalid_outputs,
            "model_path": self.model_path,
            "execution_provider": getattr(self.policy, "providers", ["(not reported)"])[0],
            "real_time_chunking": hasattr(self.policy, "record_latency"),
        }
        level = {
            PolicyStatus.STATE_RUNNING: Level.OK,
            PolicyStatus.STATE_ERROR: Level.ERROR,
        }.get(self._status, Level.WARN)
        return DiagnosticsReport(level, self._status_message, values)


def _check_provider_available(choice: str) -> None:
    import onnxruntime as ort

    wanted, available = PROVIDERS[choice][0], ort.get_available_providers()
    if wanted not in available:
        raise ConfigError(
            f"parameter execution_provider={choice!r} is invalid: {wanted} is not available in "
            f"this onnxruntime (available: {available}); install onnxruntime-gpu for cuda / "
            "tensorrt, or use cpu"
        )


def _finite_or_nan(value: float) -> float:
    return float(value) if np.isfinite(value) else float("nan")


def main(args: list[str] | None = None) -> int:
    return run_node(PolicyNode, args)


if __name__ == "__main__":
    sys.exit(main())
