"""The default policy (and the MLP baseline) work with cameras of another aspect ratio than
their square training renders.

Landscape cameras (MuJoCo fovy is vertical, so a 4:3 render shows the square view plus side
bands): prepare_rgb centre-crops to the model aspect instead of stretching; with stretching, a 4:3
camera dropped the success rate to about 50 %.
"""

from __future__ import annotations

import pytest

from human_video_policy.resources import resource_path
from human_video_policy.sim.evaluate import EvaluationConfig, evaluate, exported_policy_factory
from human_video_policy.sim.widowx_world import WidowXWorldConfig


@pytest.mark.parametrize("policy", ["widowx_reach_dit", "widowx_reach.onnx"])
@pytest.mark.parametrize(("width", "height"), [(160, 120), (320, 240)])
def test_default_policy_reaches_with_non_square_cameras(
    policy: str, width: int, height: int
) -> None:
    model = str(resource_path("assets", "policies", policy))
    config = EvaluationConfig(
        episodes=4,
        seed=3000,
        world=WidowXWorldConfig(image_width=width, image_height=height),
        progress=False,
    )
    summary = evaluate(exported_policy_factory(model), config)
    assert summary.success_rate >= 0.75, summary.to_dict()
