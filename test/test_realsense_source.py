"""RealSenseSource through pyrealsense2's real SDK, without a camera.

Frames are injected into a real ``rs.software_device`` (known colour pattern, known z16 depth
with a depth unit, known intrinsics) and read back through a real pipeline, rs.align and the
source's conversions; a recording of that device made with ``rs.recorder`` is played back
through the ``playback`` path. The device-to-host time mapping is checked on synthetic clocks
and on injected frames.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np
import pyrealsense2 as rs
import pytest

from human_video_policy.camera import CameraFrame
from human_video_policy.camera.realsense_source import (
    DeviceClockMapper,
    RealSenseConfig,
    RealSenseSource,
    add_software_device,
)
from human_video_policy.errors import ConfigError, InputError

pytestmark = pytest.mark.timeout(60)

W, H, FPS = 64, 48, 30
COLOR_K = (60.0, 61.0, 31.5, 23.5)  # fx, fy, cx, cy
DEPTH_K = (50.0, 50.5, 32.0, 24.0)
SERIAL = "SW-0001"


def color_pattern(k: int) -> np.ndarray:
    return np.random.default_rng(k).integers(0, 256, (H, W, 3), dtype=np.uint8)


def depth_pattern_mm(k: int) -> np.ndarray:
    """Known depths (mm): a gradient that differs per frame, with a hole (0 = no data)."""
    mm = (300 + 7 * np.arange(W * H).reshape(H, W) + 11 * k) % 4000 + 1
    mm[5:9, 5:9] = 0
    return mm.astype(np.uint16)


def _intrinsics(k: tuple[float, float, float, float]) -> rs.intrinsics:
    intr = rs.intrinsics()
    intr.width, intr.height = W, H
    intr.fx, intr.fy, intr.ppx, intr.ppy = k
    intr.model = rs.distortion.none
    intr.coeffs = [0.0] * 5
    return intr


class SoftwareCamera:
    """A colour + depth RealSense made of pyrealsense2's software device, in its own context.

    ``push(k)`` injects frame set k (colour_pattern(k), depth in ``depth_units`` m per unit)
    stamped ``timestamp_ms(k)`` in ``domain``.
    """

    def __init__(
        self,
        serial: str = SERIAL,
        depth_units: float = 0.001,
        domain: rs.timestamp_domain = rs.timestamp_domain.hardware_clock,
        depth_k: tuple[float, float, float, float] = DEPTH_K,
        depth_fn=depth_pattern_mm,
    ) -> None:
        self.depth_units = depth_units
        self.domain = domain
        self.depth_fn = depth_fn
        self.device = rs.software_device()
        self.device.register_info(rs.camera_info.serial_number, serial)
        self.device.register_info(rs.camera_info.name, "Software RealSense")
        self.depth_sensor = self.device.add_sensor("Stereo Module")
        self.color_sensor = self.device.add_sensor("RGB Camera")
        self.depth_sensor.add_read_only_option(rs.option.depth_units, depth_units)
        self.depth_profile = self.depth_sensor.add_video_stream(
            self._stream(rs.stream.depth, 0, rs.format.z16, 2, depth_k), True
        )
        self.color_profile = self.color_sensor.add_video_stream(
            self._stream(rs.stream.color, 1, rs.format.rgb8, 3, COLOR_K), True
        )
        identity = rs.extrinsics()
        identity.rotation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        identity.translation = [0.0, 0.0, 0.0]
        self.depth_profile.register_extrinsics_to(self.color_profile, identity)
        self.device.create_matcher(rs.matchers.dlr_c)
        self.context = rs.context()
        self._registration = add_software_device(self.context, self.device)
        self.t0_ms = 5000.0

    @staticmethod
    def _stream(kind, uid, fmt, bpp, k) -> rs.video_stream:
        stream = rs.video_stream()
        stream.type, stream.index, stream.uid = kind, 0, uid
        stream.width, stream.height, stream.fps, stream.bpp, stream.fmt = W, H, FPS, bpp, fmt
        stream.intrinsics = _intrinsics(k)
        return stream

    def timestamp_ms(self, k: int) -> float:
        return self.t0_ms + k * 1000.0 / FPS

    def raw_depth(self, k: int) -> np.ndarray:
        return np.rint(self.depth_fn(k) * (0.001 / self.depth_units)).astype(np.uint16)

    def push(self, k: int) -> None:
        for sensor, profile, pixels, bpp in (
            (self.depth_sensor, self.depth_profile, self.raw_depth(k), 2),
            (self.color_sensor, self.color_profile, color_pattern(k), 3),
        ):
            frame = rs.software_video_frame()
            frame.pixels = np.ascontiguousarray(pixels)
            frame.bpp = bpp
            frame.stride = W * bpp
            frame.timestamp = self.timestamp_ms(k)
            frame.domain = self.domain
            frame.frame_number = k
            frame.profile = profile.as_video_stream_profile()
            if bpp == 2:
                frame.depth_units = self.depth_units
            sensor.on_video_frame(frame)

    def stream(self, frames: range, period_s: float = 1.0 / FPS) -> threading.Thread:
        """Push ``frames`` from a background thread at the camera's pace."""

        def run() -> None:
            for k in frames:
                self.push(k)
                time.sleep(period_s)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def config(**overrides) -> RealSenseConfig:
    values = dict(serial_no=SERIAL, width=W, height=H, fps=FPS, frame_timeout_s=1.0)
    values.update(overrides)
    return RealSenseConfig(**values)


def read_frames(source: RealSenseSource, count: int, timeout_s: float = 5.0) -> list[CameraFrame]:
    frames: list[CameraFrame] = []
    end = time.monotonic() + timeout_s
    while len(frames) < count and time.monotonic() < end:
        frame = source.read(0.2)
        if frame is not None:
            frames.append(frame)
    return frames


def check_frame_is_injected(frame: CameraFrame, camera: SoftwareCamera) -> None:
    k = frame.frame_number
    assert np.array_equal(frame.color_rgb, color_pattern(k)), f"colour of frame {k} changed"
    assert frame.depth_frame_number >= 0
    expected = camera.depth_fn(frame.depth_frame_number)
    assert frame.depth_mm is not None and frame.depth_mm.dtype == np.uint16
    assert np.array_equal(frame.depth_mm, expected), f"depth of frame {k} changed"


# -- through the SDK -------------------------------------------------------------------------
def test_injected_frames_come_out_unchanged_with_the_device_intrinsics() -> None:
    camera = SoftwareCamera()
    with RealSenseSource(config(align_depth=False), context=camera.context) as source:
        assert source.serial_no == SERIAL
        c, d = source.color_intrinsics, source.depth_intrinsics
        assert (c.width, c.height, c.fx, c.fy, c.cx, c.cy) == (W, H, *COLOR_K)
        assert (d.fx, d.fy, d.cx, d.cy) == DEPTH_K
        assert c.frame_id == "camera_color_optical_frame"
        assert d.frame_id == "camera_depth_optical_frame"
        pusher = camera.stream(range(12))
        frames = read_frames(source, 8)
        pusher.join()
    assert len(frames) >= 8, [f.frame_number for f in frames]
    numbers = [f.frame_number for f in frames]
    assert numbers == sorted(set(numbers)), f"frames repeated or out of order: {numbers}"
    for frame in frames:
        check_frame_is_injected(frame, camera)
        assert frame.aligned_depth_mm is None
        assert frame.timestamp_domain == "hardware_clock"
        assert frame.device_timestamp_ms == pytest.approx(camera.timestamp_ms(frame.frame_number))


def test_depth_in_a_finer_depth_unit_comes_out_in_exact_millimetres() -> None:
    camera = SoftwareCamera(depth_units=0.0001)  # D405-like: raw = 10 x mm
    with RealSenseSource(config(align_depth=False), context=camera.context) as source:
        pusher = camera.stream(range(8))
        frames = read_frames(source, 4)
        pusher.join()
    assert len(frames) >= 4
    assert int(camera.raw_depth(0).max()) > 20000  # raw units really differ from mm
    for frame in frames:
        check_frame_is_injected(frame, camera)


def test_aligned_depth_of_a_plane_keeps_its_depth_on_the_colour_grid() -> None:
    # A fronto-parallel plane stays at the same depth after re-projection onto the colour camera
    # (different focal length and principal point, identity extrinsics).
    def plane(k: int) -> np.ndarray:
        return np.full((H, W), 800 + 10 * k, np.uint16)

    camera = SoftwareCamera(depth_fn=plane)
    with RealSenseSource(config(), context=camera.context) as source:
        pusher = camera.stream(range(8))
        frames = read_frames(source, 4)
        pusher.join()
    assert len(frames) >= 4
    for frame in frames:
        aligned = frame.aligned_depth_mm
        assert aligned is not None and aligned.shape == (H, W)
        valid = aligned > 0
        assert valid.mean() > 0.9, f"only {valid.mean():.0%} of the colour grid has depth"
        assert np.all(aligned[valid] == 800 + 10 * frame.depth_frame_number)


def test_system_time_stamps_map_to_ros_time_exactly() -> None:
    camera = SoftwareCamera(domain=rs.timestamp_domain.system_time)
    camera.t0_ms = math.floor(time.time() * 1000.0)
    with RealSenseSource(config(align_depth=False), context=camera.context) as source:
        pusher = camera.stream(range(8))
        frames = read_frames(source, 4)
        pusher.join()
    assert len(frames) >= 4
    for frame in frames:
        assert frame.timestamp_domain == "system_time"
        assert frame.stamp_s == pytest.approx(
            camera.timestamp_ms(frame.frame_number) / 1000.0, abs=1e-6
        )


def test_hardware_clock_stamps_keep_device_spacing_and_never_lead_arrival() -> None:
    camera = SoftwareCamera()  # device clock starts at 5 s: nothing like host time
    arrivals: list[float] = []
    clock_lock = threading.Lock()

    def clock() -> float:
        now = time.time()
        with clock_lock:
            arrivals.append(now)
        return now

    with RealSenseSource(config(align_depth=False), context=camera.context, clock=clock) as source:
        pusher = camera.stream(range(30))
        frames = read_frames(source, 20)
        pusher.join()
    assert len(frames) >= 20
    stamps = np.array([f.stamp_s for f in frames])
    device_s = np.array([camera.timestamp_ms(f.frame_number) / 1000.0 for f in frames])
    assert abs(stamps[-1] - time.time()) < 2.0, "hardware stamps were not mapped to host time"
    assert np.all(np.diff(stamps) >= 0)
    # host - device offset is the minimum delay seen so far: it only moves when a frame arrives
    # faster than every earlier one, so deviations from the device spacing stay small.
    offsets = stamps - device_s
    assert offsets.max() - offsets.min() < 0.05, offsets
    assert source.clock_mapper.resets == 0


def test_a_silent_device_is_reported_lost_and_reconnected() -> None:
    camera = SoftwareCamera()
    messages: list[str] = []
    cfg = config(align_depth=False, frame_timeout_s=0.3, reconnect_initial_s=0.1)
    with RealSenseSource(cfg, context=camera.context, log=messages.append) as source:
        pusher = camera.stream(range(6))
        assert len(read_frames(source, 3)) >= 3
        pusher.join()
        deadline = time.monotonic() + 5.0
        while source.stats.connected and time.monotonic() < deadline:
            source.read(0.1)  # the last frames still queued, then nothing
        assert not source.stats.connected
        assert any("lost" in m and SERIAL in m for m in messages), messages
        while source.stats.reconnects == 0 and time.monotonic() < deadline:
            source.read(0.1)
        assert source.stats.reconnects == 1 and source.stats.connected, messages
        pusher = camera.stream(range(100, 110))
        again = read_frames(source, 3)
        pusher.join()
    assert len(again) >= 3 and all(f.frame_number >= 100 for f in again)
    for frame in again:
        check_frame_is_injected(frame, camera)


def test_a_missing_serial_is_a_clear_error_listing_the_connected_ones() -> None:
    camera = SoftwareCamera()
    source = RealSenseSource(config(serial_no="123456789"), context=camera.context)
    with pytest.raises(ConfigError, match=r"serial_no='123456789'.*\['SW-0001'\]"):
        source.start()


def test_no_device_at_all_is_a_clear_error() -> None:
    # A context with a software device only (never USB) would list it; an empty one lists none.
    context = rs.context()
    if list(context.query_devices()):
        pytest.fail("this test needs a machine without RealSense devices")
    with pytest.raises(ConfigError, match="no RealSense device is connected"):
        RealSenseSource(config(serial_no=""), context=context).start()


# -- recording and playback --------------------------------------------------------------------
def record(camera: SoftwareCamera, path: Path, frames: range) -> None:
    """Record the software device with rs.recorder while frames are injected."""
    recorder = rs.recorder(str(path), camera.device)
    sensors = recorder.query_sensors()
    queue = rs.frame_queue(1000)
    sensors[0].open(camera.depth_profile)
    sensors[1].open(camera.color_profile)
    for sensor in sensors:
        sensor.start(queue)
    for k in frames:
        camera.push(k)
        time.sleep(0.005)
    for sensor in sensors:
        sensor.stop()
    for sensor in sensors:
        sensor.close()
    del sensors, recorder  # closes the file


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, SoftwareCamera]:
    camera = SoftwareCamera()
    path = tmp_path_factory.mktemp("rs") / "software_camera.db3"
    record(camera, path, range(10))
    assert path.is_file() and path.stat().st_size > 0
    return path, camera


def test_a_recording_plays_back_the_same_frames(recording) -> None:
    path, camera = recording
    cfg = RealSenseConfig(playback_path=str(path), align_depth=False, playback_realtime=False)
    with RealSenseSource(cfg) as source:
        assert source.serial_no == SERIAL
        c = source.color_intrinsics
        assert (c.fx, c.fy, c.cx, c.cy) == COLOR_K
        frames = read_frames(source, 20)
        assert source.read(0.5) is None and source.finished
    numbers = [f.frame_number for f in frames]
    # Measured: this build does not play the first recorded frame set back (on a loaded
    # machine the first two or three); every later one comes, in order and unchanged.
    assert numbers == list(range(numbers[0], 10)) and numbers[0] <= 3, numbers
    for frame in frames:
        check_frame_is_injected(frame, camera)
        assert frame.device_timestamp_ms == pytest.approx(camera.timestamp_ms(frame.frame_number))


def test_a_missing_or_corrupt_recording_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"playback_path=.*file not found"):
        RealSenseConfig(playback_path=str(tmp_path / "missing.db3"))
    corrupt = tmp_path / "corrupt.db3"
    corrupt.write_bytes(b"not a recording" * 100)
    with pytest.raises(ConfigError, match="cannot start playback_path="):
        RealSenseSource(RealSenseConfig(playback_path=str(corrupt))).start()


# -- configuration and time mapping (no SDK) ------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fps": 0}, "fps=0"),
        ({"width": 640, "height": 0}, "set both or neither"),
        ({"enable_depth": False, "align_depth": True}, "align_depth"),
        ({"frame_timeout_s": -1.0}, "frame_timeout_s"),
        ({"reconnect_initial_s": 2.0, "reconnect_max_s": 1.0}, "reconnect_max_s"),
    ],
)
def test_bad_configs_are_rejected_by_name(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        RealSenseConfig(**overrides)


def test_clock_mapper_uses_the_least_delayed_frame_as_offset() -> None:
    mapper = DeviceClockMapper(window_s=2.0)
    true_offset = 1000.0  # host = device + 1000 s
    delays = [0.010, 0.004, 0.020, 0.006, 0.004]
    stamps = []
    for i, delay in enumerate(delays):
        device_ms = 1000.0 * i / 30.0
        stamps.append(mapper.map(device_ms, "hardware_clock", true_offset + i / 30.0 + delay))
    assert mapper.offset_s == pytest.approx(true_offset + 0.004)
    assert stamps[-1] == pytest.approx(true_offset + 4 / 30.0 + 0.004)
    assert stamps[0] == pytest.approx(true_offset + 0.010)  # first frame: its own delay


def test_clock_mapper_follows_drift_and_restarts_after_a_jump() -> None:
    mapper = DeviceClockMapper(window_s=1.0, reset_jump_s=0.5)
    drift = 1e-4  # the device clock runs 100 ppm slow
    errors = []
    for i in range(600):  # 20 s at 30 Hz, constant 3 ms delay
        host = 100.0 + i / 30.0
        device_ms = 1000.0 * (host - 100.0) * (1 - drift)
        stamp = mapper.map(device_ms, "hardware_clock", host + 0.003)
        errors.append(stamp - host)
    # Without the window the error would reach 100 ppm x 20 s = 2 ms; with it <= 1 s x 100 ppm.
    assert max(abs(e - 0.003) for e in errors[60:]) < 2e-4
    before = mapper.map(0.0, "hardware_clock", 200.0)  # device clock restarted at 0
    assert mapper.resets == 1 and before == pytest.approx(200.0)


def test_clock_mapper_passes_host_domains_and_rejects_unknown_ones() -> None:
    mapper = DeviceClockMapper()
    assert mapper.map(1_700_000_000_123.0, "system_time", 0.0) == pytest.approx(1_700_000_000.123)
    assert mapper.map(1_700_000_000_456.0, "global_time", 0.0) == pytest.approx(1_700_000_000.456)
    with pytest.raises(InputError, match="domain 'bogus'"):
        mapper.map(1.0, "bogus", 1.0)
    with pytest.raises(InputError, match="finite"):
        mapper.map(math.nan, "system_time", 1.0)
