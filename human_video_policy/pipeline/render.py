"""Pictures of a processed hand episode for people: ``hvp video show`` (MP4 or PNG).

Each picture has the source frames with the tracked keypoint skeleton, the VITRA future
trajectory of the wrist (:mod:`human_video_policy.video.overlays`), the current segment's
caption, and a plot of the smoothed wrist speed with the segmentation cut points (matplotlib,
Agg backend, no display). It lives in pipeline/ because it draws the pipeline's episodes.

- **PNG**: ``png_frames`` frames sampled evenly over the episode (2x2 up to 4, rows of 4
  above) above the speed plot; each thumbnail is stamped with its number and its time in the
  episode (``2  t = 1.23 s``), the same time the plot's numbered orange line marks, and has
  its segment's caption below it; each frame's trajectory runs to the end of its segment (as
  VITRA's captioning prompt does).
- **MP4** (H.264): every frame (or the first ``max_frames``) above the speed plot with a cursor
  at the current time; the trajectory shows the next ``horizon_frames`` frames.

Text is drawn after the frames are scaled to the output size (:mod:`~human_video_policy.
video.text`), so captions are as large in a 240 px thumbnail as in a 960 px frame.
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
from human_video_policy.video.text import draw_label, font_px_for_width, line_count, text_band
from human_video_policy.video.writer import Mp4Writer

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


#: Colour of the sampled-frame markers on the PNG's speed plot (and of the tile numbers).
MARKER_COLOR = (0.85, 0.45, 0.0)


def speed_plot(
    episode: HandEpisode,
    width: int,
    height: int,
    title: str | None = None,
    marks: tuple[float, ...] = (),
) -> tuple[np.ndarray, Callable[[float], int]]:
    """An RGB ``(height, width, 3)`` speed plot with cut points, and time (s) -> pixel column.

    ``marks``: episode times (s) of the PNG's thumbnails, drawn as numbered vertical lines
    (the numbers are the thumbnails' own)."""
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
    top = max(1e-3, float(speed.max()) * 1.1)
    span = max(float(t[-1] - t[0]), 1e-9)
    for k, m in enumerate(marks):
        ax.axvline(m, color=MARKER_COLOR, lw=1.5, zorder=3)  # above the axis line at t = 0
        right = (m - t[0]) / span > 0.95  # the number inside the axes, next to its line
        ax.text(m, top, f" {k + 1} " , color=MARKER_COLOR, fontsize=10, va="top",
                ha="right" if right else "left", fontweight="bold")  # fmt: skip
    ax.set_xlim(t[0], t[-1])
    ax.set_ylim(0, top)
    ax.set_xlabel("time in episode (s)", fontsize=10)
    ax.set_ylabel("wrist speed (m/s)", fontsize=10)
    ax.tick_params(labelsize=9)
    ax.legend(loc="upper right", fontsize=9)
    ax.set_title(
        title or f"{episode.video_id} {episode.handedness} hand: {len(cuts)} cuts", fontsize=10
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
    """Frame ``i`` of the episode with skeleton and future trajectory (full resolution; the
    text is drawn later, at the output size: :func:`caption_text`, :func:`time_text`)."""
    a = episode.arrays
    img = rgb.copy()
    K = _intrinsics(episode)
    img = draw_future_trajectory(img, future_window(a["wrist_position"], i, horizon), K)
    if config.wrist_circle:
        img = draw_wrist_circle(img, a["wrist_position"][i], K)
    draw_hand_skeleton(img, a["keypoints_px"][i])
    return img


def episode_time(episode: HandEpisode, i: int) -> float:
    """Seconds from the episode's first frame to row ``i`` (the speed plot's time axis)."""
    stamps = episode.arrays["stamps_s"]
    return float(stamps[i] - stamps[0])


def caption_text(episode: HandEpisode, i: int) -> str:
    """The caption of row ``i``'s segment with the row's move primitive."""
    a = episode.arrays
    seg = int(a["segment_id"][i])
    return f"seg {seg}: {a['captions'][seg]}  [{a['move_primitive'][i]}]"


def time_text(episode: HandEpisode, i: int, number: int | None = None) -> str:
    """``"2  t = 1.23 s"``: the time on the speed plot's axis (and the thumbnail's number)."""
    head = f"{number}  " if number is not None else ""
    return f"{head}t = {episode_time(episode, i):.2f} s"


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


def mp4_frame(
    episode: HandEpisode,
    row: int,
    rgb: np.ndarray,
    config: RenderConfig,
    plot: np.ndarray,
    column: Callable[[float], int],
) -> np.ndarray:
    """One MP4 frame: the annotated frame at the output width with the caption and time drawn
    at that size, above the speed plot with a cursor at the frame's time."""
    frame = _fit(annotate_frame(episode, row, rgb, config.horizon_frames, config), config.max_width)
    font = font_px_for_width(frame.shape[1], 0.022)
    frame = draw_label(frame, caption_text(episode, row), (0, 0), font, fg=(255, 255, 0))
    frame = draw_label(frame, time_text(episode, row), (0, frame.shape[0]), font)
    strip = plot.copy()
    x = column(episode_time(episode, row))
    cv2.line(strip, (x, 0), (x, strip.shape[0] - 1), (0, 0, 0), 2)
    return np.vstack([frame, strip])


def render_mp4(
    episode: HandEpisode, source: str | Path, out: str | Path, config: RenderConfig
) -> Path:
    """Write the annotated episode as an H.264 MP4 (:class:`~human_video_policy.video.writer.
    Mp4Writer`: browsers and GitHub play it)."""
    out = Path(out)
    plot = column = None
    with Mp4Writer(out, episode.fps) as writer:
        for row, rgb in episode_frames(source, episode, config.max_frames):
            if plot is None:
                width = min(rgb.shape[1], config.max_width)  # _fit's output width
                plot, column = speed_plot(episode, width, config.plot_height)
            assert column is not None
            writer.write(mp4_frame(episode, row, rgb, config, plot, column))
    if writer.frames == 0:
        raise InputError(f"no frame of the episode could be decoded from {source}")
    return out


@dataclass(frozen=True)
class PngLayout:
    """Where :func:`compose_png` put things (what a test can check without reading pixels).

    Fields: ``rows`` (episode rows shown, in order), ``times_s`` (their episode times, as on
    the speed plot's axis), ``stamps`` (the text stamped on each thumbnail), ``captions``
    (the text under each), ``tiles`` (``(x, y, w, h)`` of each picture in the PNG),
    ``caption_boxes`` (``(x, y, w, h)`` of each caption band), ``font_px`` (the captions' and
    stamps' font size), ``plot_top`` (first row of the speed plot), ``mark_columns`` (the
    plot's x pixel of each thumbnail's time).
    """

    rows: tuple[int, ...]
    times_s: tuple[float, ...]
    stamps: tuple[str, ...]
    captions: tuple[str, ...]
    tiles: tuple[tuple[int, int, int, int], ...]
    caption_boxes: tuple[tuple[int, int, int, int], ...]
    font_px: int
    plot_top: int
    mark_columns: tuple[int, ...]


def png_columns(count: int) -> int:
    """Thumbnails per row: 2 (in a 2x2 grid) up to 4 frames, 4 above."""
    return count if count <= 2 else 2 if count <= 4 else 4


def compose_png(
    episode: HandEpisode, frames: dict[int, np.ndarray], config: RenderConfig
) -> tuple[np.ndarray, PngLayout]:
    """The PNG picture: sampled annotated frames in a grid, each stamped with its number and
    episode time and captioned below at the output size, above the speed plot whose numbered
    orange lines mark the same times."""
    rows = sample_frames(0, episode.num_frames, config.png_frames)
    seg_end = episode.arrays["segments"][episode.arrays["segment_id"], 1]
    cols = png_columns(len(rows))
    tile_w = max(160, config.max_width // cols)
    font = font_px_for_width(tile_w, 0.04)
    tiles, stamps, captions = [], [], []
    for n, r in enumerate(rows):
        horizon = max(1, int(seg_end[r]) - 1 - r)  # the trajectory runs to the segment's end
        tile = _fit(annotate_frame(episode, r, frames[r], horizon, config), tile_w)
        stamps.append(time_text(episode, r, n + 1))
        tiles.append(draw_label(tile, stamps[-1], (0, 0), font, fg=(255, 200, 80)))
        captions.append(caption_text(episode, r))
    tile_h = max(t.shape[0] for t in tiles)
    grid_rows, tile_boxes, caption_boxes = [], [], []
    y = 0
    for k in range(0, len(tiles), cols):
        group = list(range(k, min(k + cols, len(tiles))))
        lines = max(line_count(captions[i], tile_w, font) for i in group)
        cells = []
        for j in range(cols):
            if j < len(group):
                i = group[j]
                pic = np.full((tile_h, tile_w, 3), 255, np.uint8)
                pic[: tiles[i].shape[0], : tiles[i].shape[1]] = tiles[i]
                band = text_band(captions[i], tile_w, font, min_lines=lines)
                tile_boxes.append((j * tile_w, y, tiles[i].shape[1], tiles[i].shape[0]))
                caption_boxes.append((j * tile_w, y + tile_h, tile_w, band.shape[0]))
                cells.append(np.vstack([pic, band]))
            else:
                cells.append(np.full_like(cells[0], 255))
        grid_rows.append(np.hstack(cells))
        y += grid_rows[-1].shape[0]
    grid = np.vstack(grid_rows)
    times = tuple(episode_time(episode, r) for r in rows)
    plot, column = speed_plot(episode, grid.shape[1], config.plot_height, marks=times)
    layout = PngLayout(
        rows=tuple(rows),
        times_s=times,
        stamps=tuple(stamps),
        captions=tuple(captions),
        tiles=tuple(tile_boxes),
        caption_boxes=tuple(caption_boxes),
        font_px=font,
        plot_top=grid.shape[0],
        mark_columns=tuple(column(t) for t in times),
    )
    return np.vstack([grid, plot]), layout


def render_png(
    episode: HandEpisode, source: str | Path, out: str | Path, config: RenderConfig
) -> Path:
    """Write sampled annotated frames above the speed plot as one PNG (:func:`compose_png`)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = sample_frames(0, episode.num_frames, config.png_frames)
    frames = dict(r for r in episode_frames(source, episode, rows[-1] + 1) if r[0] in rows)
    if set(frames) != set(rows):
        raise InputError(
            f"frames {sorted(set(rows) - set(frames))} of the episode are missing in {source}"
        )
    image, _ = compose_png(episode, frames, config)
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
