"""VITRA's trajectory-aware augmentation (training/augmentation.py), checked by projecting the
transformed actions back onto the augmented images."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hand_fixtures import bend_finger, canonical_right_hand, mirror_to_left, random_rotation

from human_video_policy.data.dataset_writer import DatasetWriter
from human_video_policy.data.human_episodes import HumanDatasetConfig, human_dataset_spec
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.joint_angles import hand_actions_51, joint_angles_sequence
from human_video_policy.hands.rotations import euler_xyz_from_matrix, matrix_from_euler_xyz
from human_video_policy.hands.wrist_pose import wrist_poses_from_keypoints
from human_video_policy.training.augmentation import (
    FOV_KEY,
    KEYPOINTS_KEY,
    AddCamera,
    ColorJitter,
    ColorJitterConfig,
    HorizontalFlip,
    HorizontalFlipConfig,
    TrajectoryCrop,
    TrajectoryCropConfig,
    VitraAugmentationConfig,
    future_wrist_positions,
    hue_matrix,
    intrinsics_key,
    mirror_human_actions,
    mirror_human_state,
    names_a_colour,
    rotate_camera,
    swap_left_right_words,
    vitra_augmentation,
)
from human_video_policy.training.torch_dataset import ChunkDataset, ChunkDatasetConfig

CAM = "observation.images.camera_color"
KEY_K = intrinsics_key(CAM)
W, H = 160, 120
#: Off-centre principal point and non-square pixels, so nothing works by accident.
K0 = np.array([[150.0, 0.0, 84.0], [0.0, 140.0, 56.5], [0.0, 0.0, 1.0]])
T = 8
SIGMA = 1.2


def gaussian_dot(uv: np.ndarray, height: int = H, width: int = W) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return np.exp(-((xx - uv[0]) ** 2 + (yy - uv[1]) ** 2) / (2 * SIGMA**2))


def centroid(frame: torch.Tensor, threshold: float = 0.0) -> np.ndarray:
    """Intensity-weighted centre of channel 0, over pixels above ``threshold`` x the peak."""
    w = frame[0].numpy().astype(np.float64)
    w = np.where(w > threshold * w.max(), w, 0.0)
    yy, xx = np.mgrid[0 : w.shape[0], 0 : w.shape[1]]
    return np.array([(w * xx).sum(), (w * yy).sum()]) / w.sum()


def project(K: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.stack(
        [K[0, 0] * p[:, 0] / p[:, 2] + K[0, 2], K[1, 1] * p[:, 1] / p[:, 2] + K[1, 2]], 1
    )


def make_sample(
    seed: int,
    *,
    hands: tuple[bool, bool] = (True, True),
    task: str = "pick up the cup",
    dots: bool = True,
) -> dict:
    """Two hands (either can be absent), a T-row chunk, and one image per future wrist point
    with a dot where it projects (left hand's points first): the image history is the
    trajectory, so the warp moves every dot exactly like the scene."""
    rng = np.random.default_rng(seed)
    state = np.zeros((1, 102))
    state_mask = np.zeros((1, 102))
    action = np.zeros((T, 102))
    mask = np.zeros((T, 102))
    starts = ([-0.07, 0.02, 0.55], [0.08, -0.03, 0.6])
    for h, present in enumerate(hands):
        if not present:
            continue
        o = 51 * h
        state[0, o : o + 3] = np.array(starts[h]) + rng.normal(0, 0.01, 3)
        state[0, o + 3 : o + 6] = rng.uniform(-1.2, 1.2, 3)
        state[0, o + 6 : o + 51] = rng.uniform(-0.5, 1.0, 45)
        state_mask[0, o : o + 51] = 1
        action[:, o : o + 3] = rng.normal(0, 0.008, (T, 3))
        action[:, o + 3 : o + 6] = rng.normal(0, 0.08, (T, 3))
        action[:, o + 6 : o + 51] = rng.uniform(-0.5, 1.0, (T, 45))
        mask[:, o : o + 51] = 1
    points = np.concatenate(future_wrist_positions(state, state_mask, action, mask))
    uv = project(K0, points)
    if dots:
        images = np.stack([np.repeat(gaussian_dot(p)[None], 3, 0) for p in uv])
    else:
        images = np.full((1, 3, H, W), 0.5)
    keypoints = np.zeros((1, 2, 21, 3))
    for h, present in enumerate(hands):
        if present:
            keypoints[0, h] = state[0, 51 * h : 51 * h + 3] + rng.normal(0, 0.03, (21, 3))
            keypoints[0, h, 0] = state[0, 51 * h : 51 * h + 3]
    f32 = lambda x: torch.from_numpy(x.astype(np.float32))  # noqa: E731
    return {
        "task": task,
        "observation.state": f32(state),
        "mask.observation.state": f32(state_mask),
        "action": f32(action),
        "mask.action": f32(mask),
        "action_is_pad": torch.zeros(T, dtype=torch.bool),
        CAM: f32(images),
        KEY_K: f32(K0),
        FOV_KEY: f32(np.array([2 * math.atan(W / 300.0), 2 * math.atan(H / 280.0)])),
        KEYPOINTS_KEY: f32(keypoints),
    }


def trajectory_pixels(sample: dict) -> np.ndarray:
    """Projection of the sample's own future wrist trajectory with its own intrinsics."""
    tracks = future_wrist_positions(
        sample["observation.state"].numpy(),
        sample["mask.observation.state"].numpy(),
        sample["action"].numpy(),
        sample["mask.action"].numpy(),
    )
    return project(sample[KEY_K].numpy().astype(np.float64), np.concatenate(tracks))


def dot_errors(sample: dict, order: np.ndarray | None = None) -> np.ndarray:
    uv = trajectory_pixels(sample)
    frames = sample[CAM] if order is None else sample[CAM][order]
    found = np.stack([centroid(f) for f in frames])
    return np.linalg.norm(found - uv, axis=1)


CROP = TrajectoryCropConfig(area=(0.25, 0.8), margin_px=6.0)


def test_warped_dots_land_on_the_transformed_trajectory() -> None:
    """The key property: transformed actions + transformed intrinsics project onto the
    augmented image where the original trajectory's pixels went."""
    crop = TrajectoryCrop(CROP)
    errors, zooms = [], []
    for seed in range(12):
        sample = make_sample(seed)
        assert dot_errors(sample).max() < 0.05  # the dots are where the trajectory projects
        choice = crop.choose(sample, seed)
        assert choice is not None, f"seed {seed}: no crop accepted"
        out = crop.apply(sample, choice)
        K = out[KEY_K].numpy()
        assert out[CAM].shape == sample[CAM].shape
        assert K[0, 2] == pytest.approx((W - 1) / 2) and K[1, 2] == pytest.approx((H - 1) / 2)
        assert not np.allclose(choice.rotation, np.eye(3), atol=1e-3)
        err = dot_errors(out)
        errors.append(err.max())
        zooms.append(K[0, 0] / K0[0, 0])
        # the same pixels, through the homography directly
        src = (
            np.c_[trajectory_pixels(sample), np.ones(2 * (T + 1))]
            @ np.linalg.inv(choice.homography).T
        )
        np.testing.assert_allclose(src[:, :2] / src[:, 2:], trajectory_pixels(out), atol=1e-3)
        hfov, vfov = out[FOV_KEY].numpy()
        assert hfov == pytest.approx(2 * math.atan(W / (2 * K[0, 0])), rel=1e-5)
        assert vfov == pytest.approx(2 * math.atan(H / (2 * K[1, 1])), rel=1e-5)
    assert max(errors) < 0.25, errors  # measured: <= 0.04 px
    assert max(zooms) > 1.3  # real crops, not near-identity ones


def test_flipped_dots_land_on_the_flipped_trajectory() -> None:
    sample = make_sample(3)
    out = HorizontalFlip(HorizontalFlipConfig(probability=1.0)).apply(sample)
    assert out[KEY_K][0, 2].item() == pytest.approx(W - 1 - K0[0, 2])
    # the old right hand (dots T+1..) is now the left hand, which comes first
    order = np.r_[np.arange(T + 1, 2 * T + 2), np.arange(T + 1)]
    assert dot_errors(out, order).max() < 0.05
    crop = TrajectoryCrop(CROP)
    both = crop.apply(out, crop.choose(out, 5))
    assert dot_errors(both, order).max() < 0.5


def test_rotation_round_trip_and_agreement_with_the_hand_actions() -> None:
    sample = make_sample(7)
    crop = TrajectoryCrop(CROP)
    choice = crop.choose(sample, 1)
    out = crop.apply(sample, choice)
    R = choice.rotation
    back = rotate_camera(out, CAM, R.T, K0, np.linalg.inv(choice.homography), (H, W))
    for key in ("observation.state", "action", KEYPOINTS_KEY, KEY_K):
        np.testing.assert_allclose(back[key].numpy(), sample[key].numpy(), atol=2e-5, err_msg=key)
    # independently: roll the wrist poses out, turn the whole scene by R, take the actions
    s, a = sample["observation.state"].numpy()[0].astype(float), sample["action"].numpy()
    for o in (0, 51):
        Rw = [matrix_from_euler_xyz(s[o + 3 : o + 6])]
        p = [s[o : o + 3]]
        for row in a.astype(float):
            Rw.append(matrix_from_euler_xyz(row[o + 3 : o + 6]) @ Rw[-1])
            p.append(p[-1] + row[o : o + 3])
        angles = np.concatenate([s[None, o + 6 : o + 51], a[:, o + 6 : o + 51]]).reshape(-1, 15, 3)
        expected = hand_actions_51(R @ np.stack(Rw), np.stack(p) @ R.T, angles)
        np.testing.assert_allclose(out["action"].numpy()[:, o : o + 51], expected, atol=2e-5)
        got_state = out["observation.state"].numpy()[0, o : o + 6]
        np.testing.assert_allclose(got_state[:3], R @ p[0], atol=1e-6)
        np.testing.assert_allclose(matrix_from_euler_xyz(got_state[3:]), R @ Rw[0], atol=2e-6)


def test_crop_keeps_the_future_trajectory_inside_over_many_seeds() -> None:
    cfg = TrajectoryCropConfig(area=(0.1, 0.6), aspect=(0.6, 1.6), output_size=(64, 96))
    crop = TrajectoryCrop(cfg, rng=123)
    accepted = 0
    for seed in range(150):
        hands = [(True, True), (True, False), (False, True)][seed % 3]
        sample = make_sample(seed % 30, hands=hands, dots=False)
        out = crop(sample)
        if out is sample:
            continue
        accepted += 1
        assert out[CAM].shape == (1, 3, 64, 96)
        uv = trajectory_pixels(out)
        assert uv[:, 0].min() >= 0 and uv[:, 0].max() <= 95, seed
        assert uv[:, 1].min() >= 0 and uv[:, 1].max() <= 63, seed
    assert accepted > 100, accepted
    # a trajectory that cannot fit: no crop after max_tries, the sample is returned as is
    tight = TrajectoryCrop(replace(cfg, area=(0.02, 0.03), margin_px=20.0, max_tries=5), rng=0)
    sample = make_sample(0)
    assert tight(sample) is sample


def test_points_outside_the_source_image_do_not_block_cropping() -> None:
    sample = make_sample(2)
    sample["action"][:, 0] = 0.0
    sample["action"][0, 0] = 0.5  # the left wrist leaves the picture to the right at once
    uv = trajectory_pixels(sample)
    assert uv[1 : T + 1, 0].min() > W and uv[0, 0] < W and uv[T + 1 :, 0].max() < W
    crop = TrajectoryCrop(replace(CROP, max_tries=50))
    assert crop.choose(sample, 0) is not None
    strict = TrajectoryCrop(replace(CROP, ignore_points_outside_source=False, max_tries=50))
    assert strict.choose(sample, 0) is None


def test_flip_twice_is_the_identity_and_flip_swaps_hands_and_words() -> None:
    sample = make_sample(4, hands=(True, False), task="Put the LEFT cup right of the plate")
    flip = HorizontalFlip(HorizontalFlipConfig(probability=1.0))
    once, twice = flip.apply(sample), flip.apply(flip.apply(sample))
    for key, value in sample.items():
        if isinstance(value, torch.Tensor):
            np.testing.assert_allclose(twice[key].numpy(), value.numpy(), atol=1e-6, err_msg=key)
    assert twice["task"] == sample["task"]
    assert once["task"] == "Put the RIGHT cup left of the plate"
    # the left hand became the right hand: values moved (x negated), masks moved
    assert once["mask.action"][:, :51].sum() == 0 and once["mask.action"][:, 51:].sum() == T * 51
    a, b = sample["action"].numpy(), once["action"].numpy()
    np.testing.assert_allclose(b[:, 51], -a[:, 0])
    np.testing.assert_allclose(b[:, 52:54], a[:, 1:3])
    np.testing.assert_allclose(b[:, 54], a[:, 3])
    np.testing.assert_allclose(b[:, 55:57], -a[:, 4:6])
    np.testing.assert_allclose(b[:, 57:102], a[:, 6:51])  # joint angles unchanged
    kp_a, kp_b = sample[KEYPOINTS_KEY].numpy(), once[KEYPOINTS_KEY].numpy()
    np.testing.assert_allclose(kp_b[:, 1, :, 0], -kp_a[:, 0, :, 0])
    np.testing.assert_allclose(kp_b[:, 0], kp_a[:, 1])
    np.testing.assert_allclose(once[CAM].numpy(), sample[CAM].numpy()[..., ::-1])
    # probability 0 / 1 and a seeded draw
    assert HorizontalFlip(HorizontalFlipConfig(probability=0.0))(sample) is sample
    draws = [HorizontalFlip(rng=s)(sample) is sample for s in range(40)]
    assert 5 < sum(draws) < 35


def test_left_right_words() -> None:
    assert swap_left_right_words("move the left hand to the right") == (
        "move the right hand to the left"
    )
    assert swap_left_right_words("Left, RIGHT, leftmost, rightwards") == (
        "Right, LEFT, rightmost, leftwards"
    )
    assert swap_left_right_words("bright leftover copyright") == "bright leftover copyright"
    # the project's two-hand instruction keeps "Left hand" first
    assert swap_left_right_words("Left hand: hold the jar. Right hand: turn the lid.") == (
        "Left hand: turn the lid. Right hand: hold the jar."
    )


def test_mirror_matches_the_projects_wrist_frame_and_joint_angles() -> None:
    """A left hand and its mirror image measured as a right hand with the project's own
    functions (wrist_pose, joint_angles): the flip's formulas give the same numbers."""
    rng = np.random.default_rng(0)
    right = bend_finger(bend_finger(canonical_right_hand(), "index", 0, 0.6), "thumb", 1, 0.3)
    right = bend_finger(right, "ring", 1, 0.9)
    frames = []
    for _ in range(3):  # a short left-hand trajectory in the camera frame
        Rr = random_rotation(rng)
        frames.append(mirror_to_left(right) @ Rr.T + [0.05, 0.02, 0.5] + rng.normal(0, 0.02, 3))
    left_kp = np.stack(frames)
    mirrored = left_kp * [-1.0, 1.0, 1.0]

    def state_and_actions(kp: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
        R, p = wrist_poses_from_keypoints(kp, side)
        angles = joint_angles_sequence(kp, side)
        state = np.concatenate([p, euler_xyz_from_matrix(R), angles.reshape(len(kp), -1)], 1)
        return state, hand_actions_51(R, p, angles)

    s_left, a_left = state_and_actions(left_kp, "left")
    s_right, a_right = state_and_actions(mirrored, "right")
    state = np.zeros((3, 102))
    state[:, :51] = s_left
    smask = np.zeros((3, 102))
    smask[:, :51] = 1
    action = np.zeros((2, 102))
    action[:, :51] = a_left
    amask = np.zeros((2, 102))
    amask[:, :51] = 1
    got_s = mirror_human_state(state, smask)[:, 51:]
    got_a = mirror_human_actions(action, amask)[:, 51:]
    np.testing.assert_allclose(got_s[:, :3], s_right[:, :3], atol=1e-9)
    np.testing.assert_allclose(
        matrix_from_euler_xyz(got_s[:, 3:6]), matrix_from_euler_xyz(s_right[:, 3:6]), atol=1e-9
    )
    np.testing.assert_allclose(got_s[:, 6:], s_right[:, 6:], atol=1e-9)  # same joint angles
    np.testing.assert_allclose(got_a, a_right, atol=1e-9)
    # S R S (the naive reflection) is a different frame: turned by pi about the wrist z axis
    S = np.diag([-1.0, 1.0, 1.0])
    R_left = matrix_from_euler_xyz(s_left[0, 3:6])
    assert not np.allclose(S @ R_left @ S, matrix_from_euler_xyz(s_right[0, 3:6]), atol=1e-3)


def test_colour_jitter_changes_colours_unless_the_instruction_names_one() -> None:
    generator = torch.Generator().manual_seed(0)
    sample = {"task": "pick up the cup", CAM: torch.rand(2, 3, 24, 32, generator=generator)}
    jitter = ColorJitter(ColorJitterConfig(), rng=0)
    out = jitter(sample)
    assert not torch.equal(out[CAM], sample[CAM])
    assert out[CAM].min() >= 0 and out[CAM].max() <= 1 and out[CAM].dtype == torch.float32
    for task in ("pick up the Red cup", "the greenish block", "put it on the blue plates"):
        assert ColorJitter(rng=0)({**sample, "task": task})[CAM] is sample[CAM]
    assert not names_a_colour("bring the credit card")  # "red" inside a word does not count
    for text in ("pick the reddish cup", "pick the Bluish mug", "the whitish one", "two reds"):
        assert names_a_colour(text), text
    assert not names_a_colour("the blueprint and the shredded paper")
    # same seed, same draw; identity factors, identity
    again = ColorJitter(ColorJitterConfig(), rng=0)(sample)
    assert torch.equal(again[CAM], out[CAM])
    same = jitter.apply(sample, {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "hue": 0.0})
    np.testing.assert_allclose(same[CAM].numpy(), sample[CAM].numpy(), atol=1e-6)
    np.testing.assert_allclose(hue_matrix(0.0), np.eye(3), atol=1e-12)
    np.testing.assert_allclose(hue_matrix(0.2) @ np.ones(3), np.ones(3), atol=1e-6)  # grey stays


def test_masked_dims_stay_masked_and_untouched() -> None:
    sample = make_sample(5, hands=(False, True))
    garbage = torch.full((T, 51), 7.0)
    sample["action"][:, :51] = garbage
    sample["observation.state"][:, :51] = 3.0
    crop = TrajectoryCrop(CROP)
    out = crop.apply(sample, crop.choose(sample, 0))
    assert torch.equal(out["action"][:, :51], garbage)
    assert torch.equal(out["observation.state"][:, :51], sample["observation.state"][:, :51])
    assert torch.equal(out["mask.action"], sample["mask.action"])
    assert not torch.allclose(out["action"][:, 51:54], sample["action"][:, 51:54])
    flipped = HorizontalFlip(HorizontalFlipConfig(probability=1.0)).apply(out)
    assert torch.equal(flipped["action"][:, 51:], garbage)
    assert flipped["mask.action"][:, 51:].sum() == 0
    # a half-masked translation cannot be rotated
    sample["mask.action"][0, 52] = 0
    with pytest.raises(InputError, match="partly masked"):
        crop.apply(sample, crop.choose(make_sample(5, hands=(False, True)), 0))


def test_transforms_are_seeded() -> None:
    sample = make_sample(1)
    a = TrajectoryCrop(CROP, rng=9)(sample)
    b = TrajectoryCrop(CROP, rng=9)(sample)
    c = TrajectoryCrop(CROP, rng=10)(sample)
    assert torch.equal(a["action"], b["action"]) and not torch.equal(a["action"], c["action"])
    np.random.seed(4)  # rng=None: numpy's global state, which the trainer seeds per sample
    d = TrajectoryCrop(CROP)(sample)
    np.random.seed(4)
    e = TrajectoryCrop(CROP)(sample)
    assert torch.equal(d[CAM], e[CAM])


def test_missing_camera_and_configs_refuse_bad_values() -> None:
    sample = make_sample(0)
    del sample[KEY_K]
    with pytest.raises(InputError, match="AddCamera"):
        TrajectoryCrop()(sample)
    skip = TrajectoryCrop(TrajectoryCropConfig(on_missing_camera="skip"))
    assert skip(sample) is sample
    bad = {
        "area": dict(area=(0.8, 0.2)),
        "aspect[0]": dict(aspect=(0.3, 1.0)),
        "output_size": dict(output_size=(0, 64)),
        "max_tries": dict(max_tries=0),
        "margin_px": dict(margin_px=-1.0),
        "interpolation": dict(interpolation="nearest"),
        "on_missing_camera": dict(on_missing_camera="ignore"),
        "image_key": dict(image_key="camera_color"),
        "probability": dict(probability=1.5),
    }
    for name, kwargs in bad.items():
        with pytest.raises(ConfigError, match="^" + re.escape(name)):
            TrajectoryCropConfig(**kwargs)
    with pytest.raises(ConfigError, match=r"^probability"):
        HorizontalFlipConfig(probability=-0.1)
    with pytest.raises(ConfigError, match=r"^swap_words"):
        HorizontalFlipConfig(swap_words="yes")  # type: ignore[arg-type]
    for name, kwargs in {
        "brightness": dict(brightness=1.0),
        "hue": dict(hue=0.7),
        "colour_words": dict(colour_words="red"),
        "saturation": dict(saturation=float("nan")),
    }.items():
        with pytest.raises(ConfigError, match="^" + re.escape(name)):
            ColorJitterConfig(**kwargs)
    with pytest.raises(ConfigError, match=r"^crop"):
        VitraAugmentationConfig(crop=HorizontalFlipConfig())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="rng"):
        TrajectoryCrop(rng="seed")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="102-d"):
        HorizontalFlip(HorizontalFlipConfig(probability=1.0)).apply(
            {CAM: torch.zeros(1, 3, 4, 4), "action": torch.zeros(4, 7)}
        )


def write_human_dataset(root: Path) -> tuple[Path, np.ndarray]:
    """A small human dataset as ``hvp dataset from-video`` writes it (camera intrinsics in the
    meta), whose frames show a dot at the right wrist."""
    height, width, n = 96, 128, 12
    K = np.array([[110.0, 0.0, 66.0], [0.0, 110.0, 46.0], [0.0, 0.0, 1.0]])
    camera = {"width": width, "height": height, "k": K.reshape(-1).tolist()}
    cfg = HumanDatasetConfig(image_size=(height, width), camera_key=CAM)
    rng = np.random.default_rng(0)
    p = np.array([0.03, 0.0, 0.45]) + np.cumsum(rng.normal(0, 0.006, (n, 3)), axis=0)
    state = np.zeros((n, 102))
    state[:, 51:54] = p
    state[:, 54:57] = rng.uniform(-1, 1, (n, 3))
    action = np.zeros((n, 102))
    action[1:, 51:54] = np.diff(p, axis=0)
    action[1:, 54:57] = rng.normal(0, 0.05, (n - 1, 3))
    mask = np.zeros((n, 102))
    mask[:, 51:] = 1
    amask = mask.copy()
    amask[0] = 0
    keypoints = np.zeros((n, 2, 21, 3))
    keypoints[:, 1] = p[:, None] + rng.normal(0, 0.03, (n, 21, 3))
    keypoints[:, 1, 0] = p
    uv = project(K, p)
    yy, xx = np.mgrid[0:height, 0:width]
    frames = [np.exp(-((xx - u) ** 2 + (yy - v) ** 2) / (2 * 2.0**2)) * 230 + 10 for u, v in uv]
    video = np.repeat(np.stack(frames)[..., None], 3, axis=-1).astype(np.uint8)
    columns = {
        "observation.state": state,
        "mask.observation.state": mask,
        "action": action,
        "mask.action": amask,
        "segment_index": np.zeros(n, np.int64),
        "source_frame_index": np.arange(n),
        "human.hand_keypoints": keypoints.reshape(n, -1),
    }
    with DatasetWriter(root, human_dataset_spec(10.0, height, width, cfg, camera)) as w:
        w.add_episode(columns, "wipe the table with the left hand", {CAM: video})
    return root, K


def test_on_a_human_dataset_through_the_loader(tmp_path: Path) -> None:
    root, _ = write_human_dataset(tmp_path / "human")
    aug = VitraAugmentationConfig(
        crop=TrajectoryCropConfig(area=(0.3, 0.8), margin_px=6.0),
        flip=HorizontalFlipConfig(probability=1.0),
        jitter=None,
        keypoints=True,
    )
    transforms = vitra_augmentation(root, aug, seed=0)
    assert isinstance(transforms[0], AddCamera)
    cfg = ChunkDatasetConfig(horizon=4, action_space="human", image_size=(64, 64))
    plain = ChunkDataset(root, replace(cfg, transforms=transforms[:1]))
    augmented = ChunkDataset(root, replace(cfg, transforms=transforms))
    s0 = plain[3]
    # intrinsics of the loader's centre crop + resize: 96x128 -> 96x96 -> 64x64
    k = s0[KEY_K].numpy()
    np.testing.assert_allclose(k, [[110 * 2 / 3, 0, (66 - 16 + 0.5) * 2 / 3 - 0.5],
                                   [0, 110 * 2 / 3, (46 + 0.5) * 2 / 3 - 0.5], [0, 0, 1]],
                               rtol=1e-6)  # fmt: skip
    assert s0[FOV_KEY].shape == (2,) and s0[KEYPOINTS_KEY].shape == (1, 2, 21, 3)
    for index in (2, 5, 7):
        s = augmented[index]
        assert s["task"] == "wipe the table with the right hand"
        assert s["mask.action"][:, 51:].sum() == 0 and s["mask.action"][:, :51].sum() > 0
        wrist = s["observation.state"].numpy()[-1, :3].astype(float)
        np.testing.assert_allclose(s[KEYPOINTS_KEY].numpy()[-1, 0, 0], wrist, atol=1e-6)
        found = centroid(s[CAM][-1], threshold=0.5)  # the video's background is not 0
        uv = project(s[KEY_K].numpy().astype(float), wrist[None])[0]
        assert np.linalg.norm(found - uv) < 1.5, (index, found, uv)
        uv_all = trajectory_pixels(s)
        assert uv_all.min() >= 0 and uv_all[:, 0].max() <= 63 and uv_all[:, 1].max() <= 63
