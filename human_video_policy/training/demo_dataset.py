"""The reach demonstrations (``record_demos.Demos``) as a torch Dataset with LeRobot-style keys.

So one trainer (``training/trainer.py``) trains on the reach demos and on LeRobot-v3 datasets
(``torch_dataset.ChunkDataset``): each sample has the keys and shapes ``ChunkDataset`` gives
with ``history=1``:

* ``observation.state`` (1, 8) float32: the measured WidowX joints (WIDOWX_STATE_JOINTS),
  with ``mask.observation.state`` (ones) and ``observation.state_is_pad`` ([False]);
* ``observation.images.scene`` (1, 3, H, W) float32 in [0, 1]: the rendered scene image, as
  recorded (already resized with the runtime's ``prepare_rgb``) or resized to ``image_size``;
* ``action`` (horizon, 7) float32: the expert's absolute joint targets (WIDOWX_COMMAND_JOINTS),
  the first ``horizon`` rows of the recorded chunk; ``mask.action`` ones, ``action_is_pad``
  all False;
* ``task`` "reach the red target", ``embodiment`` "widowx", ``index``, ``episode_index`` (the
  world seed of the sample's episode), ``frame_index`` (position within that episode).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from human_video_policy.data.normalization import FeatureStats, RunningStats
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS, WIDOWX_STATE_JOINTS
from human_video_policy.training.record_demos import Demos
from human_video_policy.validation import check_int_range

REACH_TASK = "reach the red target"
DEMO_CAMERA = "observation.images.scene"
DEMO_ACTION_SPACE = "widowx_joint_position"
DEMO_EMBODIMENT = "widowx"


def _check_finite(name: str, array_name: str, values: np.ndarray) -> None:
    """Refuse NaN/inf in a demo array at load, naming the file, the array and the first bad
    sample: found later they surface as a non-finite normalisation statistic or loss with
    no trace of which data caused them."""
    if not np.issubdtype(values.dtype, np.floating) or len(values) == 0:
        return
    ok = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if ok.all():
        return
    first = int(np.argmin(ok))
    where = tuple(int(i) for i in np.argwhere(~np.isfinite(values[first]))[0])
    raise InputError(
        f"{name}: array {array_name!r} holds a non-finite value "
        f"({values[first][where]}) at sample {first} (index {list(where)} within it; "
        f"{int((~ok).sum())} sample(s) affected); fix or re-record the demonstrations"
    )


class DemoDataset(Dataset):
    """Samples of a ``Demos`` set (or its ``.npz`` path), one per recorded policy tick.

    Args:
        demos: the demonstrations or the path of their ``.npz``.
        horizon: action rows per sample (<= the recorded chunk length; None: all of them).
        image_size: (height, width) to resize the images to (``cv2.INTER_AREA`` after a
            centre crop, as ChunkDataset), or None to keep the recorded size.
        with_images: False leaves the camera out (state-only policies).
        task: the instruction every sample carries.
    """

    action_space = DEMO_ACTION_SPACE
    embodiment = DEMO_EMBODIMENT
    action_names = WIDOWX_COMMAND_JOINTS
    state_names = WIDOWX_STATE_JOINTS

    def __init__(
        self,
        demos: Demos | str | Path,
        horizon: int | None = None,
        image_size: tuple[int, int] | None = None,
        *,
        with_images: bool = True,
        task: str = REACH_TASK,
    ) -> None:
        self.path = None if isinstance(demos, Demos) else Path(demos)
        self.demos = demos if isinstance(demos, Demos) else Demos.load(demos)
        name = str(self.path) if self.path else "demos"
        if len(self.demos) == 0:
            raise InputError(f"{name}: no demonstration samples")
        if self.demos.actions.ndim != 3 or self.demos.states.ndim != 2:
            raise InputError(
                f"{name}: actions {self.demos.actions.shape} / states {self.demos.states.shape} "
                "are not (N, horizon, dims) / (N, dims)"
            )
        recorded = self.demos.actions.shape[1]
        self.horizon = recorded if horizon is None else check_int_range("horizon", horizon, 1)
        if self.horizon > recorded:
            raise ConfigError(
                f"horizon={self.horizon} is invalid for {name}: its chunks hold {recorded} rows"
            )
        _check_finite(name, "states", self.demos.states)
        # the rows this dataset serves (a chunk's rows past ``horizon`` are never read)
        _check_finite(name, "actions", self.demos.actions[:, : self.horizon])
        images = self.demos.images
        if with_images and image_size is not None and tuple(images.shape[1:3]) != tuple(image_size):
            from human_video_policy.data.dataset_reader import resize_area

            images = np.stack([resize_area(img, *image_size) for img in images])
        self.images = images if with_images else None
        self.image_keys = [DEMO_CAMERA] if with_images else []
        self.task = self.demos.instruction or task
        if self.demos.robot != DEMO_EMBODIMENT:  # a task-suite robot's demos (record_task_demos)
            from human_video_policy.robots.spec import get_robot

            spec = get_robot(self.demos.robot)
            self.embodiment = self.demos.robot
            self.action_space = spec.joint_action_space
            self.action_names = tuple(spec.command_joints)
            self.state_names = tuple(spec.state_joints)
        width = (len(self.action_names), len(self.state_names))
        if (self.demos.actions.shape[2], self.demos.states.shape[1]) != width:
            raise InputError(
                f"{name}: actions have {self.demos.actions.shape[2]} and states "
                f"{self.demos.states.shape[1]} columns, but {self.demos.robot!r} has "
                f"{width[0]} command and {width[1]} state joints"
            )
        episodes = self.demos.episodes
        # position of each sample within its episode (samples are stored episode by episode)
        self.frame_index = np.zeros(len(episodes), np.int64)
        for i in range(1, len(episodes)):
            if episodes[i] == episodes[i - 1]:
                self.frame_index[i] = self.frame_index[i - 1] + 1

    @property
    def action_dim(self) -> int:
        return int(self.demos.actions.shape[2])

    @property
    def state_dim(self) -> int:
        return int(self.demos.states.shape[1])

    def __len__(self) -> int:
        return len(self.demos)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range 0..{len(self) - 1}")
        state = np.asarray(self.demos.states[index], np.float32)[None]
        action = np.ascontiguousarray(self.demos.actions[index, : self.horizon], np.float32)
        sample: dict[str, Any] = {
            "index": int(index),
            "episode_index": int(self.demos.episodes[index]),
            "frame_index": int(self.frame_index[index]),
            "task": self.task,
            "embodiment": self.embodiment,
            "observation.state": torch.from_numpy(state.copy()),
            "mask.observation.state": torch.ones(state.shape),
            "observation.state_is_pad": torch.zeros(1, dtype=torch.bool),
            "action": torch.from_numpy(action),
            "action_is_pad": torch.zeros(self.horizon, dtype=torch.bool),
            "mask.action": torch.ones(action.shape),
        }
        if self.images is not None:
            image = torch.from_numpy(np.ascontiguousarray(self.images[index]))
            sample[DEMO_CAMERA] = image.permute(2, 0, 1)[None].float().div_(255.0)
        return sample

    def stats(self) -> dict[str, FeatureStats]:
        """Per-dimension statistics of ``observation.state`` and of ``action`` (every row of
        every chunk up to ``horizon``), as ``FeatureStats``."""
        state = RunningStats((self.state_dim,))
        state.update(self.demos.states, "demo states")
        action = RunningStats((self.action_dim,))
        action.update(
            self.demos.actions[:, : self.horizon].reshape(-1, self.action_dim), "demo actions"
        )
        return {"observation.state": state.result(), "action": action.result()}


__all__ = ["DEMO_ACTION_SPACE", "DEMO_CAMERA", "REACH_TASK", "DemoDataset"]
