"""Pictures of one dataset episode: an MP4 of the camera image above its action curves (a cursor
at "now"), and a PNG of its state and action curves.

What a person checks before training on a demonstration: do the commanded actions match what
the robot (or hand) visibly does, and when? The curves of every action dimension (masked
dimensions left out) are drawn once with matplotlib; each video frame gets the camera image,
the current values of the first dimensions as text, and a cursor on the curves. The PNG
(:func:`plot_episode_curves`) splits the dimensions into panels of related names (one hand's
finger, the wrist, eight robot joints at most), so a 102-d human action stays readable.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from human_video_policy.data.dataset_reader import DatasetReader
from human_video_policy.errors import InputError

MAX_LISTED = 8  # action values printed on the image (the curves show all of them)
MAX_PER_PANEL = 9  # curves in one panel of the PNG (a finger's 3 joints x 3 angles)


def _kept(rows: dict[str, np.ndarray], key: str, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """The columns of ``key`` (and their names) whose ``<key>.mask`` is set in some row."""
    values = np.asarray(rows[key], dtype=np.float64)
    names = names if len(names) == values.shape[1] else [str(j) for j in range(values.shape[1])]
    mask = rows.get(f"{key}.mask")
    if mask is None:
        return values, names
    keep = np.asarray(mask).max(axis=0) > 0
    return values[:, keep], [n for n, k in zip(names, keep, strict=True) if k]


def _panels(names: list[str]) -> list[tuple[str, list[int]]]:
    """Columns grouped into panels by name: "right.index2.flexion" -> "right.index",
    "right.dt_x" -> "right"; names without dots in runs of MAX_PER_PANEL."""
    groups: dict[str, list[int]] = {}
    for j, name in enumerate(names):
        parts = name.split(".")
        key = ".".join([*parts[:-2], re.sub(r"\d+$", "", parts[-2])]) if len(parts) > 1 else ""
        groups.setdefault(key, []).append(j)
    panels = []
    for key, columns in groups.items():
        for start in range(0, len(columns), MAX_PER_PANEL):
            part = columns[start : start + MAX_PER_PANEL]
            panels.append((key or f"{names[part[0]]} .. {names[part[-1]]}", part))
    return panels


def plot_episode_curves(
    dataset: str | Path, episode: int, out: str | Path
) -> dict[str, list[list[str]]]:
    """Write ``out`` (.png): the state and action curves of one episode, masked dimensions left
    out, in panels of related dimensions (state left, action right). Returns the names drawn,
    per feature and panel (what a caller can check without looking at pixels)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(out)
    if out.suffix.lower() != ".png":
        raise InputError(f"{out}: the plot must be a .png file")
    reader = DatasetReader(dataset)
    rows = reader.episode_rows(episode)
    keys = [k for k in ("observation.state", "action") if k in rows]
    if not keys:
        raise InputError(f"{dataset}: episode {episode} has neither observation.state nor action")
    t = np.asarray(rows["timestamp"], dtype=np.float64)
    columns = {key: _kept(rows, key, reader.names(key)) for key in keys}
    panels = {key: _panels(names) for key, (_, names) in columns.items()}
    n_rows = max(1, *(len(p) for p in panels.values()))
    fig = Figure(figsize=(7.5 * len(keys), 1.9 * n_rows + 0.8), dpi=100)
    FigureCanvasAgg(fig)
    drawn: dict[str, list[list[str]]] = {}
    for c, key in enumerate(keys):
        values, names = columns[key]
        drawn[key] = []
        for r, (title, cols) in enumerate(panels[key]):
            ax = fig.add_subplot(n_rows, len(keys), r * len(keys) + c + 1)
            side = f"{title.split('.')[0]}."  # "right." of "right.index": said in the title
            for j in cols:
                ax.plot(t, values[:, j], lw=1.0, label=names[j].removeprefix(side))
            ax.set_title(f"{key}: {title}", fontsize=8, loc="left")
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
            drawn[key].append([names[j] for j in cols])
        if not panels[key]:
            ax = fig.add_subplot(n_rows, len(keys), c + 1)
            ax.set_title(f"{key}: every dimension masked", fontsize=8, loc="left")
    task = reader.tasks[int(rows["task_index"][0])] if "task_index" in rows else ""
    fig.suptitle(f"{reader.root.name} episode {episode}: {task}  (time in s)", fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(out)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc}") from exc
    return drawn


def _curves(
    t: np.ndarray, actions: np.ndarray, names: list[str], width: int, height: int
) -> tuple[np.ndarray, float, float]:
    """RGB plot of the action curves and the pixel span (x0, x1) of its time axis."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for k in range(actions.shape[1]):
        ax.plot(t, actions[:, k], lw=1.0, label=names[k] if k < 12 else None)
    ax.set_xlim(t[0], t[-1] if t[-1] > t[0] else t[0] + 1e-3)
    ax.set_xlabel("time in episode (s)")
    ax.set_ylabel("action")
    if actions.shape[1] <= 12:
        ax.legend(loc="upper right", fontsize=6, ncol=2)
    fig.tight_layout()
    canvas.draw()
    image = np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[..., :3])
    box = ax.get_window_extent()
    return image, float(box.x0), float(box.x0 + box.width)


def render_episode_video(
    dataset: str | Path,
    episode: int,
    out: str | Path,
    camera: str | None = None,
    plot_height: int = 220,
) -> Path:
    """Write ``out`` (.mp4): episode ``episode`` of ``dataset`` with its actions overlaid.

    ``camera``: the video feature to show (default: the first one). Raises InputError for an
    episode without video, a missing episode or an unwritable output.
    """
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise InputError(f"{out}: the episode video must be an .mp4 file")
    reader = DatasetReader(dataset)
    keys = reader.video_keys
    if not keys:
        raise InputError(f"{dataset}: the dataset has no camera to render")
    key = camera or keys[0]
    if key not in keys:
        raise InputError(f"{dataset}: no camera {key!r}; cameras: {keys}")
    rows = reader.episode_rows(episode)
    actions = np.asarray(rows["action"], dtype=np.float64)
    names = reader.names("action")
    if "action.mask" in rows:
        keep = np.asarray(rows["action.mask"]).max(axis=0) > 0
        actions, names = actions[:, keep], [n for n, k in zip(names, keep, strict=True) if k]
    t = np.asarray(rows["timestamp"], dtype=np.float64)
    t = t - t[0]
    frames = reader.video_frames(episode, key)
    height, width = frames.shape[1:3]
    scale = max(1, 480 // max(height, 1))
    width_out = width * scale
    plot, x0, x1 = _curves(t, actions, names, width_out, plot_height)
    fps = float(reader.info["fps"])
    out.parent.mkdir(parents=True, exist_ok=True)
    size = (width_out, height * scale + plot.shape[0])
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise InputError(f"cannot write an MP4 to {out} (OpenCV's writer refused)")
    try:
        for i, rgb in enumerate(frames):
            image = cv2.resize(rgb, (width_out, height * scale), interpolation=cv2.INTER_NEAREST)
            for k in range(min(MAX_LISTED, actions.shape[1])):
                text = f"{names[k]}: {actions[i, k]:+.3f}"
                cv2.putText(
                    image, text, (6, 16 + 15 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1
                )
            strip = plot.copy()
            frac = t[i] / t[-1] if t[-1] > 0 else 0.0
            x = round(x0 + frac * (x1 - x0))
            cv2.line(strip, (x, 0), (x, strip.shape[0] - 1), (0, 0, 0), 2)
            writer.write(cv2.cvtColor(np.vstack([image, strip]), cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return out
