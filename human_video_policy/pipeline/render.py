"""Pictures of a processed hand episode for people: ``hvp video show`` (MP4 or PNG).

Each picture has the source frames with the tracked keypoint skeleton, the VITRA future
trajectory of the wrist (:mod:`human_video_policy.video.overlays`), the current segment's
caption, and a plot of the smoothed wrist speed with the segmentation cut points (matplotlib,
Agg backend, no display). It lives in pipeline/ because it draws the pipeline's episodes.

- **PNG**: ``png_frames`` frames sampled evenly over the episode above the speed plot; each
  frame's trajectory runs to the end of its segment (as VITRA's captioning prompt does).
- **MP4**: every frame (or the first ``max_frames``) above the speed plot with a cursor at the
  current time; the trajectory shows the next ``horizon_frames`` frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

from human_video_policy.errors import InputError
from human_video_policy.hands.keypoints import PARENT
from human_video_policy.hands.segmentation import SegmentationConfig, segment_wrist_trajectory
from human_video_policy.pipeline.episode_format import HandEpisode
from human_video_policy.validation import check_int_range
from human_video_policy.video.overlays import (
    draw_future_trajectory,
    draw_wrist_circle,
    future_window,
    sample_frames,
)
from human_video_policy.video.reader import VideoReader

_BONES = tuple((PARENT[i], i) for i in range(1, 21))
FORMATS = (".mp4", ".png")


@dataclass(frozen=True)
class RenderConfig:
    """What ``hvp video show`` draws.

    Fields:
        horizon_frames: future wrist positions drawn in each MP4 frame (>= 1; 30 = 1 s at 30 fps).
        max_frames: MP4 frames written (0 = the whole episode).
        max_width: frames wider than this (px) are downscaled for the output (>= 160).
        png_frames: frames sampled for the PNG (1..16; VITRA samples 8 per segment).
        plot_height: height of the speed plot strip (px, >= 100).
        wrist_circle: also draw the method A wrist circle (radius ~ 1 / depth).
    """

    horizon_frames: int = 30
    max_frames: int = 0
    max_width: int = 960
    png_frames: int = 4
    plot_height: int = 240
    wrist_circle: bool = False

    def __post_init__(self) -> None:
        check_int_range("horizon_frames", self.horizon_frames, 1)
        check_int_range("max_frames", self.max_frames, 0)
        check_int_range("max_width", self.max_width, 160)
        check_int_range("png_frames", self.png_frames, 1, 16)
        check_int_range("plot_height", self.plot_height, 100)
        if not isinstance(self.wrist_circle, bool):
            raise InputError(f"wrist_circle={self.wrist_circle!r} is invalid: must be a bool")


def draw_hand_skeleton(image: np.ndarray, keypoints_px: np.ndarray, scale: float = 1.0) -> None:
    """Draw the 20 bones and 21 joints of one hand in place (skips NaN keypoints)."""
    if not np.isfinite(keypoints_px).all():
        return
    pts = np.round(keypoints_px * scale * 16).astype(np.int64)
    for a, b in _BONES:
        cv2.line(image, tuple(pts[a]), tuple(pts[b]), (0, 220, 0), 2, cv2.LINE_AA, 4)
    for p in pts:
        cv2.circle(image, tuple(p), 3 * 16, (255, 255, 255), -1, cv2.LINE_AA, 4)


def episode_speed(episode: HandEpisode) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """``(time_s, speed_m_s, cut_points)`` of the episode's wrist, as the pipeline segmented it."""
    params = dict(episode.extra.get("segmentation", {}))
    seg = segment_wrist_trajectory(
        episode.arrays["wrist_position"], SegmentationConfig(fps=episode.fps, **params)
    )
    t = episode.arrays["stamps_s"] - episode.arrays["stamps_s"][0]
    return t, seg.speed, seg.cut_points


def speed_plot(
    episode: HandEpisode, width: int, height: int, title: str | None = None
) -> tuple[np.ndarray, Callable[[float], int]]:
    """An RGB ``(height, width, 3)`` speed plot with cut points, and time (s) -> pixel column."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t, speed, cuts = episode_speed(episode)
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(t, speed, color="tab:blue", lw=1.5, label="wrist speed (smoothed)")
    for k, (s, e) in enumerate(episode.arrays["segments"]):
        if k % 2:
            ax.axvspan(t[s], t[min(e, len(t) - 1)], color="0.9", lw=0)
    for c in cuts:
        ax.axvline(t[c], color="tab:red", lw=1.2, ls="--")
    ax.plot([t[c] for c in cuts], [speed[c] for c in cuts], "v", color="tab:red", label="cut")
    ax.set_xlim(t[0], t[-1])
    ax.set_ylim(0, max(1e-3, float(speed.max()) * 1.1))
    ax.set_xlabel("time in episode (s)")
    ax.set_ylabel("m/s")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(
        title or f"{episode.video_id} {episode.handedness} hand: {len(cuts)} cuts", fontsize=9
    )
    fig.tight_layout()
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    image = np.ascontiguousarray(rgba[..., :3])
    box = ax.get_window_extent()
    x0, x1 = ax.get_xlim()

    def column(time_s: float) -> int:
        frac = (time_s - x0) / (x1 - x0) if x1 > x0 else 0.0
        return round(box.x0 + frac * box.width)

    return image, column


def _intrinsics(episode: HandEpisode) -> SimpleNamespace:
    return SimpleNamespace(**episode.intrinsics)


def annotate_frame(
    episode: HandEpisode, i: int, rgb: np.ndarray, horizon: int, config: RenderConfig
) -> np.ndarray:
    """Frame ``i`` of the episode with skeleton, future trajectory, caption (full resolution)."""
    a = episode.arrays
    img = rgb.copy()
    K = _intrinsics(episode)
    img = draw_future_trajectory(img, future_window(a["wrist_position"], i, horizon), K)
    if config.wrist_circle:
        img = draw_wrist_circle(img, a["wrist_position"][i], K)
    draw_hand_skeleton(img, a["keypoints_px"][i])
    seg = int(a["segment_id"][i])
    text = f"{episode.handedness} seg {seg}: {a['captions'][seg]}  [{a['move_primitive'][i]}]"
    cv2.putText(img, text, (12, 36), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 5, cv2.LINE_AA)
    cv2.putText(img, text, (12, 36), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 0), 2, cv2.LINE_AA)
    return img


def episode_frames(
    source: str | Path, episode: HandEpisode, limit: int = 0
) -> Iterable[tuple[int, np.ndarray]]:
    """``(episode row, rgb)`` for the episode's frames, decoded from the source video."""
    wanted = {int(f): row for row, f in enumerate(episode.arrays["frame_index"])}
    last = int(episode.arrays["frame_index"][limit - 1 if limit else -1])
    reader = VideoReader(source)
    if (reader.width, reader.height) != (
        int(episode.intrinsics["width"]),
        int(episode.intrinsics["height"]),
    ):
        raise InputError(
            f"{source} is {reader.width}x{reader.height} but the episode was made from a "
            f"{episode.intrinsics['width']:g}x{episode.intrinsics['height']:g} video"
        )
    for frame in reader:
        if frame.index in wanted:
            yield wanted[frame.index], frame.rgb
        if frame.index >= last:
            return


def _fit(img: np.ndarray, max_width: int) -> np.ndarray:
    if img.shape[1] <= max_width:
        return img
    h = round(img.shape[0] * max_width / img.shape[1])
    return cv2.resize(img, (max_width, h), interpolation=cv2.INTER_AREA)


def render_mp4(
    episode: HandEpisode, source: str | Path, out: str | Path, config: RenderConfig
) -> Path:
    """Write the annotated episode as an MP4 (MPEG-4 part 2, OpenCV's writer)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    plot = column = None
    written = 0
    try:
        for row, rgb in episode_frames(source, episode, config.max_frames):
            frame = _fit(
                annotate_frame(episode, row, rgb, config.horizon_frames, config), config.max_width
            )
            if writer is None:
                plot, column = speed_plot(episode, frame.shape[1], config.plot_height)
                size = (frame.shape[1], frame.shape[0] + plot.shape[0])
                writer = cv2.VideoWriter(
                    str(out), cv2.VideoWriter_fourcc(*"mp4v"), episode.fps, size
                )
                if not writer.isOpened():
                    raise InputError(f"cannot write an MP4 to {out} (OpenCV's writer refused)")
            strip = plot.copy()
            x = column(float(episode.arrays["stamps_s"][row] - episode.arrays["stamps_s"][0]))
            cv2.line(strip, (x, 0), (x, strip.shape[0] - 1), (0, 0, 0), 2)
            writer.write(cv2.cvtColor(np.vstack([frame, strip]), cv2.COLOR_RGB2BGR))
            written += 1
    finally:
        if writer is not None:
            writer.release()
    if written == 0:
        raise InputError(f"no frame of the episode could be decoded from {source}")
    return out


def render_png(
    episode: HandEpisode, source: str | Path, out: str | Path, config: RenderConfig
) -> Path:
    """Write sampled annotated frames above the speed plot as one PNG."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    T = episode.num_frames
    rows = sample_frames(0, T, config.png_frames)
    frames = dict(r for r in episode_frames(source, episode, rows[-1] + 1) if r[0] in rows)
    if set(frames) != set(rows):
        raise InputError(
            f"frames {sorted(set(rows) - set(frames))} of the episode are missing in {source}"
        )
    seg_end = episode.arrays["segments"][episode.arrays["segment_id"], 1]
    tiles = [
        annotate_frame(episode, r, frames[r], max(1, int(seg_end[r]) - 1 - r), config) for r in rows
    ]
    tile_w = max(160, config.max_width // min(len(tiles), 4))
    tiles = [_fit(t, tile_w) for t in tiles]
    grid_rows = []
    for k in range(0, len(tiles), 4):
        row = tiles[k : k + 4]
        row += [np.full_like(tiles[0], 255)] * (4 - len(row)) if len(tiles) > 4 else []
        grid_rows.append(np.hstack(row))
    grid = np.vstack(grid_rows)
    plot, _ = speed_plot(episode, grid.shape[1], config.plot_height)
    image = np.vstack([grid, plot])
    if not cv2.imwrite(str(out), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise InputError(f"cannot write a PNG to {out}")
    return out


def render_episode(
    episode: HandEpisode, source: str | Path, out: str | Path, config: RenderConfig | None = None
) -> Path:
    """MP4 or PNG depending on the suffix of ``out``."""
    config = config or RenderConfig()
    suffix = Path(out).suffix.lower()
    if suffix == ".mp4":
        return render_mp4(episode, source, out, config)
    if suffix == ".png":
        return render_png(episode, source, out, config)
    raise InputError(f"output {out} must end in one of {FORMATS}")
