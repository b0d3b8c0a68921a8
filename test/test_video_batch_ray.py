"""The batch runner on a real local Ray instance (2 CPUs, loopback only, its own temp folder):
3 short clips of the real video + one corrupt file. The results must equal a local run's,
file for file, and the corrupt video must be retried, then reported."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_video_pipeline import make_bad_videos, make_clip

from human_video_policy.pipeline.batch import BatchConfig, run_batch
from human_video_policy.pipeline.episode_format import read_episode, read_video_record
from human_video_policy.pipeline.video_episodes import VideoPipelineConfig

CONFIG = VideoPipelineConfig(max_frames=36)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("video_ray")
    clips = [make_clip(root / f"clip_{n}.mp4", n) for n in (36, 40, 44)]
    corrupt = make_bad_videos(root / "bad")["corrupt"]
    videos = [*clips, corrupt]
    ray_out, local_out = root / "ray_out", root / "local_out"
    ray_report = run_batch(
        videos,
        CONFIG,
        BatchConfig(
            out_dir=ray_out,
            use_ray=True,
            workers=2,
            max_retries=2,
            ray_temp_dir=str(root / "ray"),
            progress=False,
        ),
    )
    local_report = run_batch(
        videos, CONFIG, BatchConfig(out_dir=local_out, max_retries=2, progress=False)
    )
    return ray_report, local_report, ray_out, local_out


def test_ray_processes_the_clips_and_reports_the_failing_video(runs) -> None:
    ray_report, _, ray_out, _ = runs
    statuses = [o.status for o in ray_report.outcomes]
    assert statuses == ["ok", "ok", "ok", "failed"], ray_report.outcomes
    failed = ray_report.outcomes[-1]
    assert failed.attempts == 3, "the failing video must be tried 1 + max_retries times"
    assert "InputError: cannot open video" in failed.error
    record = read_video_record(ray_out / failed.video_id)
    assert record["status"] == "failed" and record["attempts"] == 3


def test_ray_and_local_runs_give_the_same_files(runs) -> None:
    ray_report, local_report, ray_out, local_out = runs
    assert [o.video_id for o in ray_report.outcomes] == [o.video_id for o in local_report.outcomes]
    assert (ray_out / "index.jsonl").read_text() == (local_out / "index.jsonl").read_text()
    for o in ray_report.outcomes[:3]:
        names = sorted(p.name for p in (ray_out / o.video_id).iterdir())
        assert names == sorted(p.name for p in (local_out / o.video_id).iterdir())
        for name in names:
            if not name.endswith(".npz"):
                continue
            a = read_episode(ray_out / o.video_id / name)
            b = read_episode(local_out / o.video_id / name)
            assert a.meta() == b.meta()
            for key, arr in a.arrays.items():
                if arr.dtype.kind == "f":
                    np.testing.assert_allclose(arr, b.arrays[key], atol=1e-9, err_msg=key)
                else:
                    np.testing.assert_array_equal(arr, b.arrays[key], err_msg=key)
        ray_record = read_video_record(ray_out / o.video_id)
        local_record = read_video_record(local_out / o.video_id)
        for volatile in ("stage_seconds", "frames_per_second"):
            ray_record.pop(volatile)
            local_record.pop(volatile)
        assert json.dumps(ray_record, sort_keys=True) == json.dumps(local_record, sort_keys=True)


def test_ray_run_is_resumable(runs) -> None:
    _, _, ray_out, _ = runs
    import ray

    assert not ray.is_initialized(), "the batch must shut down the Ray instance it started"
    again = run_batch(
        [o for o in sorted(ray_out.parent.glob("clip_*.mp4"))],
        CONFIG,
        BatchConfig(out_dir=ray_out, use_ray=True, workers=2, progress=False),
    )
    assert [o.status for o in again.outcomes] == ["skipped"] * 3
    assert not ray.is_initialized(), "nothing to do: Ray must not even start"
