"""Robot episodes straight from the MuJoCo sim into the dataset format (``hvp dataset from-sim``).

The scripted reach expert with DART noise (as ``training.record_demos``) drives the simulated
WidowX; every rollout becomes one dataset episode with the same columns a converted bag would
give, so sim demonstrations mix with recorded and human ones without ROS in the loop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def record_sim_dataset(
    out: str | Path,
    episodes: int,
    *,
    seed: int = 0,
    image_size: tuple[int, int] = (128, 128),
    noise_std: float = 0.05,
    instruction: str = "reach the red target",
    progress: bool = False,
) -> tuple[int, float]:
    """Roll out the scripted reach expert (with DART noise, as ``record_demos``) in the sim and
    write one dataset episode per rollout; returns (frames, driver success rate).

    Rows at the policy rate (10 Hz): the rendered image (``image_size`` (height, width), the
    world renders at that size), the measured joints (8) and, as ``action``, the joint command
    in force at the row's time (7; the bag converter's convention)."""
    from human_video_policy.data.bag_to_dataset import BagConversionConfig, episode_spec
    from human_video_policy.data.dataset_writer import DatasetWriter
    from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS, WIDOWX_STATE_JOINTS
    from human_video_policy.sim.evaluate import evaluate
    from human_video_policy.sim.reach_expert import ReachExpert
    from human_video_policy.sim.widowx_world import WidowXWorldConfig
    from human_video_policy.training.record_demos import NoisyExpertSource, RecordConfig

    h, w = image_size
    rec = RecordConfig(
        episodes=episodes,
        seed=seed,
        image_height=h,
        image_width=w,
        noise_std=noise_std,
        world=WidowXWorldConfig(image_width=w, image_height=h),
        progress=progress,
    )
    eval_cfg = rec.evaluation_config()
    bag_cfg = BagConversionConfig(rate_hz=1.0 / eval_cfg.policy_period_s, instruction=instruction)
    rows: dict[str, list] = {"state": [], "action": [], "image": []}
    state: dict[str, object] = {"writer": None, "seed": None}

    def flush() -> None:
        if not rows["state"]:
            return
        n = len(rows["state"])
        writer = state["writer"]
        assert isinstance(writer, DatasetWriter)
        writer.add_episode(
            {
                "observation.state": np.stack(rows["state"]),
                "action": np.stack(rows["action"]),
                "action.mask": np.ones((n, len(WIDOWX_COMMAND_JOINTS)), np.float32),
                "observation.state.mask": np.ones((n, len(WIDOWX_STATE_JOINTS)), np.float32),
                "segment_index": np.zeros(n, np.int64),
            },
            instruction,
            {"observation.images.camera_color": np.stack(rows["image"])},
            source=f"sim:widowx_reach seed={state['seed']}",
        )
        for v in rows.values():
            v.clear()

    def observer(world, image, joint_state, stamp) -> None:  # type: ignore[no-untyped-def]
        if state["writer"] is None:
            k = world.camera_intrinsics()
            camera = {
                "topic": "sim:scene_camera",
                "width": k.width,
                "height": k.height,
                "k": [k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0],
                "frame_id": k.frame_id,
            }
            spec = episode_spec(
                bag_cfg,
                WIDOWX_COMMAND_JOINTS,
                WIDOWX_STATE_JOINTS,
                {"observation.images.camera_color": (h, w)},
                {"observation.images.camera_color": camera},
            )
            state["writer"] = DatasetWriter(out, spec)
        if world.seed != state["seed"]:
            flush()
            state["seed"] = world.seed
        rows["state"].append(np.asarray(joint_state, np.float32))
        rows["action"].append(world.joint_command().astype(np.float32))
        rows["image"].append(image if image is not None else world.render_rgb())

    def factory(world):  # type: ignore[no-untyped-def]
        rng = np.random.default_rng([seed, 7919])
        return NoisyExpertSource(
            world, ReachExpert(world.scene_path), noise_std, rec.noise_period_s, rng
        )

    summary = evaluate(factory, eval_cfg, description="from-sim", observer=observer)
    flush()
    writer = state["writer"]
    assert isinstance(writer, DatasetWriter)
    writer.finalize()
    frames = writer.total_frames
    return frames, summary.success_rate
