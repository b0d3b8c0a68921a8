"""Prompt-video encoders (runtime/prompt_encoders.py): the keyframes baseline, the checks on
frames and embeddings, discovery by name (an installed plugin package and a broken one), bounded
decoding of real MP4 files, and the cache by content hash."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fixture_packages import install_plugin_fixture

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.runtime import prompt_encoders
from human_video_policy.runtime.prompt_encoders import (
    MIB,
    FrameClip,
    KeyframesEncoder,
    PromptEmbedder,
    check_embedding,
    check_frames,
    file_sha256,
    make_prompt_encoder,
    parse_encoder_args,
    prompt_encoder_names,
    read_video_frames,
)
from human_video_policy.video.writer import Mp4Writer

EXAMPLE_VIDEO = Path(__file__).resolve().parents[1] / "assets" / "examples" / "human_hand_video.mp4"


def synthetic_clip(count: int, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A moving bright square on a coloured gradient: distinct frames that survive H.264."""
    rng = np.random.default_rng(seed)
    base = np.zeros((height, width, 3), np.uint8)
    base[..., 0] = np.linspace(0, 200, width, dtype=np.uint8)[None, :]
    base[..., 1] = np.linspace(0, 200, height, dtype=np.uint8)[:, None]
    base[..., 2] = rng.integers(0, 255)
    frames = np.repeat(base[None], count, axis=0)
    for t in range(count):
        x = (t * 3) % (width - 12)
        frames[t, 10:22, x : x + 12] = 255
    return frames


def write_mp4(path: Path, frames: np.ndarray, fps: float = 15.0) -> Path:
    with Mp4Writer(path, fps) as writer:
        for frame in frames:
            writer.write(frame)
    return path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_plugin_fixture(tmp_path_factory.mktemp("plugin"))


# -- the keyframes baseline -----------------------------------------------------------------
def test_keyframes_is_deterministic_with_the_documented_shape_and_id() -> None:
    frames = synthetic_clip(20)
    encoder = make_prompt_encoder("keyframes")
    assert encoder.encoder_id == "keyframes-8x16x16"
    first = encoder.encode(frames)
    assert first.shape == (8, 16 * 16 * 3) and first.dtype == np.float32
    assert np.array_equal(first, KeyframesEncoder().encode(frames.copy()))
    assert abs(float(first.reshape(-1, 3).mean(axis=0).max())) < 1e-5  # the clip mean is removed
    assert not np.allclose(first[0], first[-1])  # the square moved between first and last frame
    small = make_prompt_encoder("keyframes", num_tokens=4, size=8)
    assert small.encoder_id == "keyframes-4x8x8" and small.encode(frames).shape == (4, 192)
    short = encoder.encode(frames[:3])  # fewer frames than tokens: frames repeat
    assert short.shape == (8, 768) and np.array_equal(short[0], short[1])
    other = encoder.encode(synthetic_clip(20, seed=5))
    assert not np.allclose(first, other)


def test_keyframes_averages_exact_pixel_areas_and_removes_the_clip_mean() -> None:
    # 1 x 3 frame, values 0, 255, 255 -> 2 columns: (0 + 0.5 * 1) / 1.5 and (0.5 * 1 + 1) / 1.5
    frame = np.zeros((1, 1, 3, 3), np.uint8)
    frame[0, 0, 1:] = 255
    encoder = KeyframesEncoder(num_tokens=1, size=2)
    tokens = encoder.encode(frame).reshape(2, 2, 3)
    columns = np.array([1 / 3, 1.0])
    expected = columns - columns.mean()
    assert np.allclose(tokens[0, :, 0], expected, atol=1e-6)
    assert np.allclose(tokens[1], tokens[0])  # one input row stretched over both output rows
    halves = np.zeros((1, 32, 32, 3), np.uint8)
    halves[0, :, 16:] = 255  # left black, right white -> -0.5 / +0.5 after the mean
    two = KeyframesEncoder(num_tokens=1, size=2).encode(halves).reshape(2, 2, 3)
    assert np.allclose(two[:, 0], -0.5) and np.allclose(two[:, 1], 0.5)


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (np.zeros((4, 8, 8, 3), np.float32), "must be uint8 RGB, got dtype float32"),
        (np.zeros((8, 8, 3), np.uint8), r"shape \(T, H, W, 3\).*got \(8, 8, 3\)"),
        (np.zeros((2, 8, 8, 4), np.uint8), r"got \(2, 8, 8, 4\)"),
        (np.zeros((0, 8, 8, 3), np.uint8), "is empty"),
        (np.zeros((3, 0, 8, 3), np.uint8), "is empty"),
        ([[[[0, 0, 0]]]], "must be a numpy array, got list"),
    ],
)
def test_bad_frames_are_refused_with_what_is_wrong(frames, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_frames(frames)
    with pytest.raises(InputError, match=message):
        KeyframesEncoder().encode(frames)


def test_keyframes_arguments_are_checked() -> None:
    for bad in ({"num_tokens": 0}, {"size": 1000}, {"size": True}, {"num_tokens": 2.5}):
        with pytest.raises(ConfigError, match=r"keyframes encoder: (num_tokens|size)=.* invalid"):
            make_prompt_encoder("keyframes", **bad)


# -- the output check -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("output", "message"),
    [
        (np.full((2, 3), np.nan, np.float32), r"6 non-finite values .* first at \[0, 0\] = nan"),
        (np.array([[1.0, np.inf]]), r"non-finite .* \[0, 1\] = inf"),
        (np.array([[1e40]]), "non-finite values .*beyond float32"),
        (np.zeros(5, np.float32), r"shape \(5,\): an embedding must be 2-D"),
        (np.zeros((1, 2, 3), np.float32), "must be 2-D"),
        (np.zeros((0, 4), np.float32), "empty embedding"),
        (np.array([["a", "b"]]), "dtype <U1: must be real numbers"),
        (None, "must be 2-D"),
        ([[1.0], [2.0, 3.0]], "not an array"),
    ],
)
def test_an_encoder_output_that_is_not_a_finite_2d_array_is_refused(output, message) -> None:
    with pytest.raises(InputError, match=f"encoder 'enc-1' .*{message}"):
        check_embedding(output, "enc-1")


def test_a_good_output_becomes_a_float32_copy() -> None:
    output = np.arange(6, dtype=np.float64).reshape(2, 3)
    embedding = check_embedding(output)
    assert embedding.dtype == np.float32 and embedding.flags.c_contiguous
    assert np.array_equal(embedding, output) and not np.shares_memory(embedding, output)
    assert check_embedding([[1, 2]]).dtype == np.float32


class _Returns:
    def __init__(self, value, encoder_id: str = "fake-1") -> None:
        self.value, self.encoder_id, self.calls = value, encoder_id, 0

    def encode(self, frames):
        self.calls += 1
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.full((4, 3), np.nan), "non-finite"),
        (np.zeros(7), "must be 2-D"),
        (RuntimeError("CUDA out of memory"), r"failed on clip \(5 frames of 64x48\): RuntimeError"),
        (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
    ],
)
def test_an_encoder_that_throws_or_returns_garbage_gives_one_input_error(value, message) -> None:
    embedder = PromptEmbedder(_Returns(value))
    with pytest.raises(InputError, match=f"encoder 'fake-1'.*{message}"):
        embedder.embed_frames(synthetic_clip(5))
    assert not embedder.cache and embedder.misses == 1  # a failure is not cached


# -- discovery --------------------------------------------------------------------------------
def test_unknown_names_bad_arguments_and_non_encoders_are_named(monkeypatch) -> None:
    unknown = r"encoder='nope' is unknown: choose one of \[.*keyframes"
    with pytest.raises(ConfigError, match=unknown):
        make_prompt_encoder("nope")
    with pytest.raises(ConfigError, match="prompt encoder 'keyframes': bad encoder_args"):
        make_prompt_encoder("keyframes", tokens=3)
    monkeypatch.setitem(prompt_encoders.BUILT_IN, "not_an_encoder", lambda: object())
    with pytest.raises(ConfigError, match="does not implement the prompt encoder interface"):
        make_prompt_encoder("not_an_encoder")
    monkeypatch.setitem(prompt_encoders.BUILT_IN, "no_id", lambda: _Returns(None, encoder_id=""))
    with pytest.raises(ConfigError, match="non-empty str `encoder_id`"):
        make_prompt_encoder("no_id")

    def refuses(**kwargs):
        raise FileNotFoundError("weights.onnx is missing")

    monkeypatch.setitem(prompt_encoders.BUILT_IN, "refuses", refuses)
    with pytest.raises(ConfigError, match=r"cannot be made .*FileNotFoundError: weights\.onnx"):
        make_prompt_encoder("refuses")


def test_encoder_args_are_a_json_object() -> None:
    assert parse_encoder_args("") == {} and parse_encoder_args("  ") == {}
    assert parse_encoder_args('{"num_tokens": 4}') == {"num_tokens": 4}
    with pytest.raises(ConfigError, match="must be a JSON object"):
        parse_encoder_args("[1, 2]")
    with pytest.raises(ConfigError, match="is not JSON"):
        parse_encoder_args("{num_tokens: 4")


def test_an_installed_plugin_is_found_by_name_and_a_broken_one_is_named(
    installed: Path, monkeypatch
) -> None:
    monkeypatch.syspath_prepend(str(installed))
    assert {"keyframes", "mean_colour", "broken_encoder"} <= set(prompt_encoder_names())
    encoder = make_prompt_encoder("mean_colour", **parse_encoder_args("{}"))
    frames = synthetic_clip(6)
    result = PromptEmbedder(encoder).embed_frames(frames)
    assert result.encoder_id == "mean_colour" and result.shape == (6, 3)
    assert np.allclose(result.embedding, frames.mean(axis=(1, 2)) / 255.0, atol=1e-6)
    with pytest.raises(ConfigError, match=r"broken_encoder.*cannot be loaded: ModuleNotFoundError"):
        make_prompt_encoder("broken_encoder")
    nan = make_prompt_encoder("mean_colour", nan=True)
    with pytest.raises(InputError, match="'mean_colour-nan' returned 18 non-finite"):
        PromptEmbedder(nan).embed_frames(frames)


# -- bounded decoding ------------------------------------------------------------------------
def test_a_real_mp4_decodes_whole_and_longer_ones_are_refused_not_truncated(
    tmp_path: Path, monkeypatch
) -> None:
    frames = synthetic_clip(12)
    path = write_mp4(tmp_path / "clip.mp4", frames)
    decoded = read_video_frames(path, max_frames=12, max_bytes=64 * MIB)
    assert decoded.shape == (12, 48, 64, 3) and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - frames).mean() < 6  # H.264 is lossy, not another video
    with pytest.raises(InputError, match="has 12 frames, more than max_frames=11: refused"):
        read_video_frames(path, max_frames=11, max_bytes=64 * MIB)
    with pytest.raises(InputError, match="decode to 0 MiB, more than max_clip_mb"):
        read_video_frames(path, max_frames=100, max_bytes=100_000)
    # an encoder's input_size: frames are area-resized as they are decoded (bounded memory),
    # and the keyframes embedding stays what the full frames give
    encoder = KeyframesEncoder()
    small = read_video_frames(path, 12, 64 * MIB, size=(24, 32))
    assert small.shape == (12, 24, 32, 3)
    at_input = read_video_frames(path, 12, 64 * MIB, size=encoder.input_size)
    assert at_input.shape == (12, *encoder.input_size, 3)
    assert np.abs(encoder.encode(at_input) - encoder.encode(decoded)).max() < 0.01
    # the real example video (621 frames of 1280x720) is refused from its header, undecoded
    with pytest.raises(InputError, match="has 621 frames, more than max_frames=100"):
        read_video_frames(EXAMPLE_VIDEO, max_frames=100, max_bytes=4096 * MIB)

    # a container that does not announce its length: decoding stops one frame past the bound
    from human_video_policy.video import reader as reader_module

    original = reader_module.VideoReader.__init__

    def unannounced(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.frame_count = 0

    monkeypatch.setattr(reader_module.VideoReader, "__init__", unannounced)
    with pytest.raises(InputError, match="more than max_frames=5 frames: refused, not truncated"):
        read_video_frames(path, max_frames=5, max_bytes=64 * MIB)
    with pytest.raises(InputError, match=r"more than 3 frames of 0\.0 MiB exceed max_clip_mb"):
        read_video_frames(path, max_frames=100, max_bytes=3 * 48 * 64 * 3 + 10)
    assert read_video_frames(path, max_frames=12, max_bytes=64 * MIB).shape[0] == 12


def test_unreadable_files_give_the_reason(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, np.uint8).tobytes())
    with pytest.raises(InputError, match="cannot open video"):
        read_video_frames(garbage, 100, 64 * MIB)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="cannot open video"):
        read_video_frames(empty, 100, 64 * MIB)
    with pytest.raises(InputError, match="video file not found"):
        file_sha256(tmp_path / "missing.mp4", MIB)
    with pytest.raises(InputError, match="not a regular file"):
        file_sha256(tmp_path, MIB)
    with pytest.raises(InputError, match=r"cannot be used: .*File name too long"):
        file_sha256("x" * 5000, MIB)
    with pytest.raises(InputError, match="not found"):
        file_sha256("a\0b.mp4", MIB)
    with pytest.raises(InputError, match="larger than max_clip_mb"):
        file_sha256(garbage, 10_000)
    copy = shutil.copy(garbage, tmp_path / "copy.bin")
    assert file_sha256(copy, MIB) == file_sha256(garbage, MIB)


def test_a_frame_clip_keeps_its_first_problem_and_lets_the_frames_go() -> None:
    clip = FrameClip(max_frames=3, max_bytes=MIB, what="clip on /x")
    with pytest.raises(InputError, match="clip on /x has no frames"):
        clip.frames()
    for frame in synthetic_clip(3, 8, 8):
        clip.add(frame)
    assert clip.frames().shape == (3, 8, 8, 3)
    clip.add(np.zeros((8, 8, 3), np.uint8))
    clip.add(np.zeros((4, 4, 3), np.uint8))  # ignored: the clip has failed already
    with pytest.raises(InputError, match="more than max_frames=3 frames: refused, not truncated"):
        clip.frames()
    assert clip.received == 5
    resized = FrameClip(10, MIB, "clip")
    resized.add(np.zeros((8, 8, 3), np.uint8))
    resized.add(np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(InputError, match="frame 1 is 9x8, the clip started at 8x8"):
        resized.frames()
    bad = FrameClip(10, MIB, "clip")
    bad.add(np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match=r"frame 0 is not \(H, W, 3\) RGB"):
        bad.frames()
    rejected = FrameClip(10, MIB, "clip")
    rejected.add(np.zeros((8, 8, 3), np.uint8))
    rejected.reject("image encoding 'mono8' is not a colour image")
    with pytest.raises(InputError, match="clip: frame 1: image encoding 'mono8'"):
        rejected.frames()
    huge = FrameClip(10, 100, "clip")
    huge.add(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputError, match=r"one 8x8 frame .* exceeds max_clip_mb"):
        huge.frames()
    frames = synthetic_clip(40, 8, 8)
    for announced in (0, 10):  # unknown length; more frames than the container announced
        grows = FrameClip(100, MIB, "clip", expected=announced)
        for frame in frames:
            grows.add(frame)
        assert np.array_equal(grows.frames(), frames)


# -- the cache ---------------------------------------------------------------------------------
def test_the_same_content_under_another_path_comes_from_the_cache(tmp_path: Path) -> None:
    path = write_mp4(tmp_path / "a.mp4", synthetic_clip(10))
    copy = shutil.copy(path, tmp_path / "b.mp4")
    encoder = _Counting(KeyframesEncoder(num_tokens=4, size=4))
    embedder = PromptEmbedder(encoder, max_frames=50, max_bytes=64 * MIB, cache_size=2)
    first = embedder.embed_file(path)
    assert not first.cached and first.encode_ms > 0 and first.shape == (4, 48)
    assert first.encoder_id == "keyframes-4x4x4" and first.frames == 10
    again = embedder.embed_file(copy)
    assert again.cached and again.encode_ms == 0.0 and encoder.calls == 1 and again.frames == 10
    assert np.array_equal(again.embedding, first.embedding)
    assert again.content_sha256 == first.content_sha256
    assert (embedder.hits, embedder.misses) == (1, 1)
    frames = synthetic_clip(5)
    assert not embedder.embed_frames(frames).cached
    assert embedder.embed_frames(frames.copy()).cached  # keyed by the pixels, not the object
    embedder.embed_frames(synthetic_clip(5, seed=9))  # third entry: the file is evicted
    assert not embedder.embed_file(path).cached and encoder.calls == 4
    with pytest.raises(InputError, match="more than max_frames=50"):
        embedder.embed_frames(synthetic_clip(51, 4, 4))
    uncached = PromptEmbedder(encoder, cache_size=0)
    uncached.embed_frames(frames)
    assert not uncached.embed_frames(frames).cached and not uncached.cache


class _Counting:
    def __init__(self, inner) -> None:
        self.inner, self.encoder_id, self.calls = inner, inner.encoder_id, 0

    def encode(self, frames):
        self.calls += 1
        return self.inner.encode(frames)
