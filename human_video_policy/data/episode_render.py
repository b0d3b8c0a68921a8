"""Pictures of one dataset episode: an MP4 of the camera image above its action curves (a cursor
at "now"), and a PNG of its state and action curves.

What a person checks before training on a demonstration: do the commanded actions match what
the robot (or hand) visibly does, and when? Both pictures draw the dimensions in the same
panels (:func:`group_dimensions`), each with a legend naming its curves and its unit on the
y axis:

* human hands (``right.index2.flexion``, ``right.dt_x``...): per hand the wrist translation /
  position (m), the wrist rotation (rad), then one panel per finger in anatomical order (thumb,
  index, middle, ring, pinky; 3 joints x flexion, abduction, twist, rad);
* a robot the project knows (robots/spec.py ``get_robot``, found by the dataset's embodiment or
  by its joint names): arm joints and hand / gripper joints in separate panels (``rm75_xhand``:
  the RM75 arm, then the XHand by finger; ``widowx``: the 6 arm joints, then the gripper
  fingers, m); method A's wrist 6D rotation (unitless) and wrist position (m);
* anything else: runs of at most MAX_PER_PANEL dimensions, in column order.

Masked data is left out: a dimension whose ``<key>.mask`` is never set is not drawn, and a row
whose mask is 0 for a dimension is a gap in that curve (NaN), not a value of 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from human_video_policy.data.dataset_reader import DatasetReader
from human_video_policy.errors import ConfigError, InputError

MAX_LISTED = 8  # action values printed on the image (the curves show all of them)
MAX_PER_PANEL = 9  # curves in one panel (a finger's 3 joints x 3 angles)
#: Fingers in anatomical order, and the words joint names use for them.
FINGERS = ("thumb", "index", "middle", "ring", "pinky")
_FINGER_WORDS = {"thumb": 0, "index": 1, "middle": 2, "mid": 2, "ring": 3, "pinky": 4, "little": 4}
_HUMAN = re.compile(r"^(left|right)\.(.+)$")


@dataclass(frozen=True)
class Panel:
    """One panel of curves: ``columns`` index the feature's drawn columns, ``labels`` are the
    legend entries, ``unit`` the y axis unit (``""`` when unknown)."""

    title: str
    unit: str
    columns: tuple[int, ...]
    labels: tuple[str, ...]


def _finger_of(name: str) -> int | None:
    for word in re.split(r"[^a-z]+", re.sub(r"\d+", " ", name.lower())):
        if word in _FINGER_WORDS:
            return _FINGER_WORDS[word]
    return None


def _human_group(name: str, sides: list[str]) -> tuple[tuple[int, ...], str, str] | None:
    """(sort key, title, legend label) of a human-space name, or None."""
    m = _HUMAN.match(name)
    if m is None:
        return None
    side, rest = m.groups()
    if side not in sides:
        sides.append(side)
    s = sides.index(side)
    if rest.startswith(("dt_", "wrist_p_")):  # the action's translation, the state's position
        what = "position" if rest.startswith("wrist_p_") else "translation"
        return (0, s, 0), f"{side} wrist {what}", rest
    if rest.startswith(("dr_", "wrist_r_")):
        return (0, s, 1), f"{side} wrist rotation", rest
    finger = _finger_of(rest.split(".")[0])
    if finger is None:
        return (0, s, 9), side, rest
    return (0, s, 2 + finger), f"{side} {FINGERS[finger]}", rest


def _robot_joint_groups(robot: str) -> dict[str, tuple[int, str]]:
    """joint -> (part order, part title) of a registered robot: its parts (an arm with a hand),
    or its IK joints ("arm") and the rest ("gripper" / "hand"); mirrored joints join their
    source's part."""
    from human_video_policy.robots.spec import get_robot

    spec = get_robot(robot)
    out: dict[str, tuple[int, str]] = {}
    if spec.parts:
        for k, part in enumerate(spec.parts):
            sub = get_robot(part)
            kind = "arm" if sub.ik_joints else "hand"
            for j in sub.state_joints:
                out.setdefault(j, (k, f"{part} {kind}"))
    else:
        rest = [j for j in spec.command_joints if j not in spec.ik_joints]
        for j in spec.ik_joints:
            out[j] = (0, f"{robot} arm")
        kind = "hand" if len(rest) > 2 else "gripper"
        for j in rest:
            out[j] = (1, f"{robot} {kind}")
    for name, source, _ in spec.mirrored:
        if source in out:
            out[name] = out[source]
    for j in spec.state_joints:
        out.setdefault(j, (9, robot))
    return out


def _robot_tables(robot: str | None) -> list[dict[str, tuple[int, str]]]:
    from human_video_policy.robots.spec import robot_names

    names = robot_names()
    order = ([robot] if robot in names else []) + [r for r in names if r != robot]
    return [_robot_joint_groups(r) for r in order]


def _split(title: str, columns: list[int], names: list[str]) -> list[tuple[str, list[int]]]:
    """A group of more than MAX_PER_PANEL columns split into panels, at finger boundaries when
    the names say which finger (the XHand: thumb + index, then middle + ring + pinky)."""
    if len(columns) <= MAX_PER_PANEL:
        return [(title, columns)]
    fingers = [_finger_of(names[c]) for c in columns]
    if all(f is not None for f in fingers):
        parts: list[list[int]] = []
        for f in sorted(set(fingers), key=lambda f: f or 0):
            cols = [c for c, g in zip(columns, fingers, strict=True) if g == f]
            if parts and len(parts[-1]) + len(cols) <= MAX_PER_PANEL:
                parts[-1] += cols
            else:
                parts.append(cols)
        if all(len(p) <= MAX_PER_PANEL for p in parts):
            out = []
            for p in parts:
                used = sorted({_finger_of(names[c]) or 0 for c in p})
                out.append((f"{title}: {', '.join(FINGERS[f] for f in used)}", p))
            return out
    return [
        (f"{title} ({k // MAX_PER_PANEL + 1})", columns[k : k + MAX_PER_PANEL])
        for k in range(0, len(columns), MAX_PER_PANEL)
    ]


def group_dimensions(
    names: list[str], units: list[str] | None = None, robot: str | None = None
) -> list[Panel]:
    """The panels the dimensions ``names`` are drawn in (module docstring), one unit each.

    ``units``: one per name (``""`` = unknown); ``robot``: the dataset's embodiment, tried
    first when looking joint names up in the robot registry."""
    units = list(units) if units is not None else [""] * len(names)
    if len(units) != len(names):
        raise ConfigError(f"{len(units)} units for {len(names)} names")
    tables = _robot_tables(robot)
    sides: list[str] = []
    groups: dict[tuple[Any, ...], tuple[str, list[int]]] = {}
    for j, name in enumerate(names):
        human = _human_group(name, sides)
        if human is not None:
            key, title, _ = human
        elif re.fullmatch(r"wrist_rot6d_\d", name):
            key, title = (2, 0), "wrist rotation (6D)"
        elif re.fullmatch(r"wrist_[xyz]", name):
            key, title = (2, 1), "wrist position"
        else:
            hit = next(((k, t[name]) for k, t in enumerate(tables) if name in t), None)
            if hit is not None:
                table, (part, title) = hit
                key = (1, table, part, title)
            else:
                key, title = (3, j // MAX_PER_PANEL), ""
        key = (*key, units[j])
        groups.setdefault(key, (title, []))[1].append(j)
    panels = []
    for key in sorted(groups):
        title, columns = groups[key]
        if not title:  # an unknown run: named by its first and last dimension
            title = f"{names[columns[0]]} .. {names[columns[-1]]}"
        for part_title, cols in _split(title, columns, names):
            panels.append(
                Panel(part_title, key[-1], tuple(cols), _labels([names[c] for c in cols]))
            )
    return panels


def _labels(names: list[str]) -> tuple[str, ...]:
    """Legend entries: the names without the hand side the title says (``right.``) and without
    a prefix every name of the panel shares up to an ``_`` (``right_hand_``)."""
    names = [_HUMAN.sub(r"\2", n) for n in names]
    if len(names) > 1:
        common = names[0]
        for n in names[1:]:
            while not n.startswith(common):
                common = common[:-1]
        common = common[: common.rfind("_") + 1]
        if common and all(len(n) > len(common) for n in names):
            names = [n[len(common) :] for n in names]
    return tuple(names)


def dimension_units(reader: DatasetReader, key: str, names: list[str]) -> list[str]:
    """The unit of each dimension of ``key``: from the dataset's action space (the registry's
    units, matched by name, so a state of the same joints gets them too; a mirrored joint gets
    its source's), then the human hand's names (m for positions, rad for angles); ``""``
    when unknown."""
    from human_video_policy.policies.action_spaces import get_action_space
    from human_video_policy.robots.spec import get_robot, robot_names

    table: dict[str, str] = {}
    try:
        space = get_action_space(reader.spec.action_space)
        table.update(zip(space.names, space.units, strict=False))
    except (ConfigError, InputError):
        pass
    if reader.spec.embodiment in robot_names():
        for name, source, _ in get_robot(reader.spec.embodiment).mirrored:
            if source in table:
                table[name] = table[source]
    out = []
    for name in names:
        unit = table.get(name, "")
        m = _HUMAN.match(name)
        if not unit and m is not None:
            rest = m.group(2)
            unit = "m" if rest.startswith(("dt_", "wrist_p_")) else "rad"
        out.append(unit)
    return out


def _kept(
    rows: dict[str, np.ndarray], key: str, names: list[str]
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The columns of ``key`` whose ``<key>.mask`` is set in some row, their names, and the
    values with masked rows set to NaN (drawn as gaps)."""
    values = np.asarray(rows[key], dtype=np.float64)
    names = names if len(names) == values.shape[1] else [str(j) for j in range(values.shape[1])]
    mask = rows.get(f"mask.{key}")
    if mask is None:
        return values, names, np.ones(values.shape[1], bool)
    mask = np.asarray(mask) > 0
    keep = mask.any(axis=0)
    values = np.where(mask, values, np.nan)
    return values[:, keep], [n for n, k in zip(names, keep, strict=True) if k], keep


def _axis_label(unit: str) -> str:
    return {"": "value", "1": "value (unitless)"}.get(unit, unit)


def _draw_panel(ax, t: np.ndarray, values: np.ndarray, panel: Panel, fontsize: float) -> None:  # type: ignore[no-untyped-def]
    for j, label in zip(panel.columns, panel.labels, strict=True):
        ax.plot(t, values[:, j], lw=1.0, label=label)
    ax.set_ylabel(_axis_label(panel.unit), fontsize=fontsize)
    ax.tick_params(labelsize=fontsize - 1)
    ax.legend(
        fontsize=fontsize - 1.5,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
        handlelength=1.2,
    )


@dataclass
class EpisodeCurves:
    """One episode's curves as drawn: per feature the kept values (NaN on masked rows), the
    kept names and the panels."""

    time_s: np.ndarray
    values: dict[str, np.ndarray]
    names: dict[str, list[str]]
    panels: dict[str, list[Panel]]
    title: str


def episode_curves(
    reader: DatasetReader, episode: int, keys: tuple[str, ...] = ("observation.state", "action")
) -> EpisodeCurves:
    """Read and group the curves of ``keys`` for :func:`episode_figure` and the MP4."""
    rows = reader.episode_rows(episode)
    present = [k for k in keys if k in rows]
    if not present:
        raise InputError(f"{reader.root}: episode {episode} has none of {list(keys)}")
    t = np.asarray(rows["timestamp"], dtype=np.float64)
    values, names, panels = {}, {}, {}
    for key in present:
        v, n, keep = _kept(rows, key, reader.names(key))
        all_units = dimension_units(reader, key, reader.names(key))
        units = [u for u, k in zip(all_units, keep, strict=False) if k] or [""] * len(n)
        values[key], names[key] = v, n
        panels[key] = group_dimensions(n, units, reader.spec.embodiment)
    task = reader.tasks[int(rows["task_index"][0])] if "task_index" in rows else ""
    return EpisodeCurves(t, values, names, panels, f"{reader.root.name} episode {episode}: {task}")


def episode_figure(dataset: str | Path, episode: int):  # type: ignore[no-untyped-def]
    """The matplotlib Figure of ``hvp dataset plot`` (state left, action right, one panel per
    group) and the :class:`EpisodeCurves` it draws."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curves = episode_curves(DatasetReader(dataset), episode)
    keys = list(curves.values)
    n_rows = max(1, *(len(p) for p in curves.panels.values()))
    fig = Figure(figsize=(7.5 * len(keys), 1.9 * n_rows + 0.9), dpi=100)
    FigureCanvasAgg(fig)
    for c, key in enumerate(keys):
        panels = curves.panels[key]
        for r, panel in enumerate(panels):
            ax = fig.add_subplot(n_rows, len(keys), r * len(keys) + c + 1)
            _draw_panel(ax, curves.time_s, curves.values[key], panel, 8)
            ax.set_title(f"{key}: {panel.title}", fontsize=8, loc="left")
            if r == len(panels) - 1:
                ax.set_xlabel("time in episode (s)", fontsize=8)
        if not panels:
            ax = fig.add_subplot(n_rows, len(keys), c + 1)
            ax.set_title(f"{key}: every dimension masked", fontsize=8, loc="left")
    fig.suptitle(f"{curves.title}  (masked rows are gaps)", fontsize=10)
    fig.tight_layout()
    return fig, curves


def plot_episode_curves(
    dataset: str | Path, episode: int, out: str | Path
) -> dict[str, list[list[str]]]:
    """Write ``out`` (.png): the state and action curves of one episode, masked dimensions and
    rows left out, in panels of related dimensions (state left, action right). Returns the
    names drawn, per feature and panel (what a caller can check without looking at pixels)."""
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise InputError(f"{out}: the plot must be a .png file")
    fig, curves = episode_figure(dataset, episode)
    try:
        fig.savefig(out)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc}") from exc
    return {
        key: [[curves.names[key][j] for j in p.columns] for p in panels]
        for key, panels in curves.panels.items()
    }


def action_strip(
    curves: EpisodeCurves, width: int, panel_height: int = 150
) -> tuple[np.ndarray, list[tuple[int, int, int, int]], Any]:
    """RGB picture of the action panels (2 per row when there are several) and, per panel, the
    pixel box ``(x0, x1, top, bottom)`` of its plot area (for the cursor); also the Figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = curves.panels.get("action", [])
    cols = 1 if len(panels) <= 1 else 2
    n_rows = max(1, -(-len(panels) // cols))
    dpi = 100
    height = panel_height * n_rows + 30
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    t = curves.time_s - curves.time_s[0]
    axes = []
    for k, panel in enumerate(panels):
        ax = fig.add_subplot(n_rows, cols, k + 1)
        _draw_panel(ax, t, curves.values["action"], panel, 8)
        ax.set_title(f"action: {panel.title}", fontsize=8, loc="left")
        ax.set_xlim(t[0], t[-1] if t[-1] > t[0] else t[0] + 1e-3)
        if k >= len(panels) - cols:
            ax.set_xlabel("time in episode (s)", fontsize=8)
        axes.append(ax)
    if not panels:
        ax = fig.add_subplot(1, 1, 1)
        ax.set_title("action: every dimension masked", fontsize=8, loc="left")
        axes.append(ax)
    fig.tight_layout()
    canvas.draw()
    image = np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[..., :3])
    boxes = []
    for ax in axes:
        b = ax.get_window_extent()
        boxes.append((round(b.x0), round(b.x1), round(height - b.y1), round(height - b.y0)))
    return image, boxes, fig


def render_episode_video(
    dataset: str | Path,
    episode: int,
    out: str | Path,
    camera: str | None = None,
    plot_height: int = 150,
) -> Path:
    """Write ``out`` (.mp4, H.264): episode ``episode`` of ``dataset``, the camera image above
    its action panels (grouped and named as in ``hvp dataset plot``) with a cursor at the
    frame's time.

    ``camera``: the video feature to show (default: the first one); ``plot_height``: pixels
    per row of panels. Raises InputError for an episode without video, a missing episode or
    an unwritable output.
    """
    from human_video_policy.video.text import draw_label, font_px_for_width
    from human_video_policy.video.writer import Mp4Writer

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
    curves = episode_curves(reader, episode, ("action",))
    actions, names = curves.values["action"], curves.names["action"]
    t = curves.time_s - curves.time_s[0]
    frames = reader.video_frames(episode, key)
    height, width = frames.shape[1:3]
    scale = max(1, 480 // max(height, 1))
    width_out = max(width * scale, 960)
    plot, boxes, _ = action_strip(curves, width_out, plot_height)
    font = font_px_for_width(width * scale, 0.022)
    with Mp4Writer(out, float(reader.info["fps"])) as writer:
        for i, rgb in enumerate(frames):
            image = np.full((height * scale, width_out, 3), 255, np.uint8)
            image[:, : width * scale] = cv2.resize(
                rgb, (width * scale, height * scale), interpolation=cv2.INTER_NEAREST
            )
            listed = [
                f"{names[k]}: {actions[i, k]:+.3f}" if np.isfinite(actions[i, k]) else
                f"{names[k]}: masked"
                for k in range(min(MAX_LISTED, actions.shape[1]))
            ]  # fmt: skip
            image = draw_label(image, f"t = {t[i]:.2f} s", (0, 0), font, fg=(255, 255, 0))
            for k, text in enumerate(listed):
                image = draw_label(image, text, (0, round((k + 1) * 1.6 * font + 4)), font)
            strip = plot.copy()
            for x0, x1, top, bottom in boxes:
                frac = t[i] / t[-1] if t[-1] > 0 else 0.0
                x = round(x0 + frac * (x1 - x0))
                cv2.line(strip, (x, top), (x, bottom), (0, 0, 0), 2)
            writer.write(np.vstack([image, strip]))
    return out
