"""``hvp video process|show`` end to end on a 45-frame clip of the real video (in-process CLI),
with the outputs read back: episodes, a decodable MP4 and a PNG."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_video_pipeline import make_bad_videos, make_clip

from human_video_policy.cli.main import main
from human_video_policy.pipeline.episode_format import read_episode, read_video_record
from human_video_policy.video import VideoReader

FRAMES = 45


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    root = tmp_path_factory.mktemp("video_cli")
    clip = make_clip(root / "clip.mp4", FRAMES)
    out = root / "out"
    code = main(["video", "process", str(clip), "-o", str(out), "-q"])
    assert code == 0
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert len(folders) == 1
    return root, clip, out, folders[0]


def test_process_writes_episodes_and_an_index(processed, capsys) -> None:
    _, _, out, folder = processed
    record = read_video_record(folder)
    assert record["status"] == "ok" and record["frames"] == FRAMES
    episode = read_episode(folder / record["episodes"][0]["file"])
    assert episode.num_frames >= 30 and episode.arrays["captions"].size >= 1
    assert (out / "index.jsonl").read_text().count("\n") == 1


def test_process_again_skips_and_force_redoes(processed, capsys) -> None:
    _, clip, out, _ = processed
    capsys.readouterr()
    assert main(["video", "process", str(clip), "-o", str(out), "-q"]) == 0
    assert ": skipped" in capsys.readouterr().out
    assert main(["video", "process", str(clip), "-o", str(out), "-q", "--max-frames", "40"]) == 0
    printed = capsys.readouterr().out
    assert ": ok 1 episode(s), 40 frames" in printed, printed


def test_a_failed_video_gives_exit_code_1_and_its_reason(processed, capsys) -> None:
    root, clip, out, _ = processed
    bad = make_bad_videos(root / "bad")
    code = main(["video", "process", str(bad["corrupt"]), str(clip), "-o", str(out), "-q"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "failed (InputError: cannot open video" in printed
    assert "1 ok, 1 failed" in printed  # the clip was last made with --max-frames 40: redone


def test_show_writes_a_decodable_mp4_and_a_png(processed, tmp_path) -> None:
    _, _, _, folder = processed
    episode_file = sorted(folder.glob("episode_*.npz"))[0]
    mp4 = tmp_path / "show.mp4"
    assert main(["video", "show", str(episode_file), "-o", str(mp4), "--max-frames", "20"]) == 0
    reader = VideoReader(mp4)
    frames = [f.rgb for f in reader]
    assert len(frames) == 20
    assert mp4_codec(mp4) == "h264"  # browsers and GitHub play H.264, not MPEG-4 part 2
    assert reader.width == 960 and reader.height == 540 + 240
    # The speed plot strip is at the bottom (mostly white), the video frame above it is not.
    assert frames[0][-200:].mean() > 200 and frames[0][:540].mean() < 200
    png = tmp_path / "show.png"
    assert main(["video", "show", str(episode_file), "-o", str(png)]) == 0
    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] == 960 and image.shape[0] > 240


def mp4_codec(path: Path) -> str:
    """The first video stream's codec name, as ffprobe reports it."""
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def text_line_heights(image: np.ndarray, box: tuple[int, int, int, int]) -> list[int]:
    """Heights (px) of the runs of rows holding dark (text) pixels inside ``box``."""
    x, y, w, h = box
    dark = (image[y : y + h, x : x + w].max(axis=2) < 110).any(axis=1)
    runs, run = [], 0
    for row in dark:
        if row:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    return [*runs, run] if run else runs


def test_show_png_captions_are_readable_and_thumbnails_carry_their_time(
    processed, tmp_path
) -> None:
    from human_video_policy.pipeline.render import (
        MARKER_COLOR,
        RenderConfig,
        compose_png,
        episode_frames,
    )

    _, _, _, folder = processed
    episode = read_episode(sorted(folder.glob("episode_*.npz"))[0])
    png = tmp_path / "show.png"
    assert main(["video", "show", str(folder), "-o", str(png)]) == 0
    saved = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
    source = read_video_record(folder)["source"]
    frames = dict(episode_frames(source, episode))
    image, layout = compose_png(episode, frames, RenderConfig())
    assert image.shape == saved.shape and np.abs(image.astype(int) - saved).max() == 0
    width = image.shape[1]
    # Captions: one band under each of the 4 thumbnails (2 x 2 at 480 px), text lines at least
    # 12 px high in the 960 px picture (1.25 % of its width; before: 4-5 px, drawn on the
    # 1280 px frame and shrunk with it).
    assert len(layout.caption_boxes) == len(layout.rows) == 4
    for box, caption in zip(layout.caption_boxes, layout.captions, strict=True):
        heights = text_line_heights(image, box)
        assert heights and max(heights) >= max(12, 0.0125 * width), (caption, heights)
        assert len(heights) <= 3  # wrapped, not clipped: every line inside the band
    # Time stamps: "n  t = 1.23 s" = the row's time on the speed plot's axis, and the plot's
    # numbered orange line n sits at that time's pixel column.
    t = episode.arrays["stamps_s"] - episode.arrays["stamps_s"][0]
    for n, (row, stamp) in enumerate(zip(layout.rows, layout.stamps, strict=True)):
        assert stamp == f"{n + 1}  t = {t[row]:.2f} s"
        assert layout.times_s[n] == pytest.approx(t[row])
    orange = np.round(np.asarray(MARKER_COLOR) * 255)
    plot = image[layout.plot_top :].astype(int)
    mid = plot.shape[0] // 2
    for x in layout.mark_columns:
        near = plot[mid - 5 : mid + 5, max(0, x - 2) : x + 3]
        assert (np.abs(near - orange).max(axis=2) <= 40).any(), x
    # Each thumbnail carries its stamp: the label's text colour is in its top-left corner.
    for x, y, _, _ in layout.tiles:
        corner = image[y : y + 3 * layout.font_px, x : x + 8 * layout.font_px].astype(int)
        assert (np.abs(corner - (255, 200, 80)).max(axis=2) <= 30).sum() > 20


def test_show_on_a_video_processes_it_first(processed, tmp_path) -> None:
    _, clip, _, _ = processed
    png = tmp_path / "from_video.png"
    assert main(["video", "show", str(clip), "-o", str(png), "--max-frames", "30"]) == 0
    assert cv2.imread(str(png)).shape[1] == 960


def test_show_on_a_processed_folder_draws_its_longest_episode(processed, tmp_path, capsys):
    _, _, _, folder = processed
    png = tmp_path / "from_folder.png"
    assert main(["video", "show", str(folder), "-o", str(png)]) == 0
    assert cv2.imread(str(png)).shape[1] == 960
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    assert main(["video", "show", str(empty), "-o", str(png)]) == 2
    assert "holds no episode_*.npz" in capsys.readouterr().err


def test_show_rejects_bad_requests(processed, tmp_path, capsys) -> None:
    _, _, _, folder = processed
    episode_file = sorted(folder.glob("episode_*.npz"))[0]
    assert main(["video", "show", str(episode_file), "-o", str(tmp_path / "x.gif")]) == 2
    assert "must end in one of ('.mp4', '.png')" in capsys.readouterr().err
    lonely = tmp_path / "lonely.npz"
    lonely.write_bytes(episode_file.read_bytes())
    assert main(["video", "show", str(lonely), "-o", str(tmp_path / "x.png")]) == 2
    assert "no video.json" in capsys.readouterr().err
    assert (
        main(
            ["video", "process", str(tmp_path / "nope.mp4"), "-o", str(tmp_path), "--workers", "2"]
        )
        == 2
    )
    assert "workers=2 is invalid without Ray" in capsys.readouterr().err


def test_the_hvp_console_script_lists_the_command() -> None:
    hvp = Path(sys.executable).parent / "hvp"
    done = subprocess.run(
        [str(hvp), "video", "process", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    for flag in ("--ray", "--workers", "--fx", "--max-frames", "--force"):
        assert flag in done.stdout


def _run_with_terminal_stderr(argv: list[str], timeout: float = 120) -> tuple[str, str]:
    """Run a command with stderr on a pseudo-terminal (as in a user's shell): (stdout, stderr)."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            proc.kill()
            raise AssertionError(f"{argv} printed nothing for {timeout} s")
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    out = proc.communicate(timeout=timeout)[0].decode()
    assert proc.returncode == 0, (out, b"".join(chunks).decode(errors="replace"))
    return out, b"".join(chunks).decode(errors="replace")


MEDIAPIPE_NOISE = (
    "GetPrototype",
    "XNNPACK",
    "absl::InitializeLog",
    "inference_feedback_manager",
    "landmark_projection_calculator",
)


def test_the_stderr_filter_drops_only_mediapipe_noise() -> None:
    code = """
import os, sys, time
from human_video_policy.hands.native_logs import filtered_native_stderr
with filtered_native_stderr():
    os.write(2, b"AttributeError: 'MessageFactory' object has no attribute 'GetPrototype'\\n")
    os.write(2, b"keep 1\\nINFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
    os.write(2, b"W0000 00:00:1796588317.537711   13876 inference_feedback_manager.cc:114] F\\n")
    sys.stderr.write("\\r 50%|bar|")
    sys.stderr.flush()
    time.sleep(0.3)  # a partial line that cannot be noise is passed on at once
    os.write(2, b"\\rW1234 not a log line\\nI0000 00:00:1.5  77 other_calculator.cc:5] kept\\n")
print("done", file=sys.stderr)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=True)
    assert done.stderr == (
        b"keep 1\n\r 50%|bar|\rW1234 not a log line\n"
        b"I0000 00:00:1.5  77 other_calculator.cc:5] kept\ndone\n"
    ), done.stderr


def test_process_shows_a_per_frame_bar_once_and_no_mediapipe_noise(processed, tmp_path) -> None:
    _, clip, _, _ = processed
    hvp = str(Path(sys.executable).parent / "hvp")
    argv = [hvp, "video", "process", str(clip), "-o", str(tmp_path / "out"), "--max-frames", "30"]
    out, err = _run_with_terminal_stderr(argv)
    for noise in MEDIAPIPE_NOISE:  # before: all five, on every run
        assert noise not in err, err
    # The bar counts frames within the one video (before: "0/1" then "1/1" videos) ...
    counts = [int(n) for n in re.findall(r"\b(\d+)/30 \[", err)]
    assert counts and counts[-1] == 30, err
    assert len({n for n in counts if 0 < n < 30}) >= 2, counts
    assert counts == sorted(counts)
    # ... and draws its final state once (before: twice, by the last update and by close()).
    assert err.count("30/30") == 1, err
    assert out.count("1 video(s) in") == 1 and out.count(": ok 1 episode(s), 30 frames") == 1
    # Into a pipe (a log file, CI) the filter holds too, and the bar ends once.
    done = subprocess.run(
        [*argv, "--force"], capture_output=True, text=True, timeout=120, check=True
    )
    assert not any(noise in done.stderr for noise in MEDIAPIPE_NOISE), done.stderr
    assert done.stderr.count("30/30") == 1, done.stderr


def test_depth_options_change_the_lifting_and_are_validated(processed, capsys) -> None:
    _, clip, out, folder = processed
    assert main(["video", "process", str(clip), "-o", str(out), "-q", "--per-frame-depth"]) == 0
    record = read_video_record(folder)
    episode = read_episode(folder / record["episodes"][0]["file"])
    assert episode.lift_method == "rgb"  # the config changed: redone, frame by frame
    capsys.readouterr()
    assert main(["video", "process", str(clip), "-o", str(out), "--depth-sigma", "-1"]) == 2
    assert "depth_sigma_s=-1.0 is invalid" in capsys.readouterr().err
