"""The prompt of a prompted policy: a human demonstration video -> /prompt/embedding.

A video comes as a file path (the ``~/encode`` service, EncodePromptVideo, or the ``video_path``
parameter at start) or as frames on ``frames_topic`` (e.g. the camera node's video mode,
/camera/camera/color/image_raw; a clip ends when no frame came for ``clip_gap_s``). The frozen
prompt encoder ``encoder`` (runtime/prompt_encoders.py: the built-in ``keyframes`` baseline or an
installed plugin) turns it into a PromptEmbedding, published transient-local (LATCHED) so that a
policy node started later still receives the current prompt. Embeddings are cached by the
SHA-256 of the content (file bytes, or the frames), so the same video is encoded once.

Bounds: a video is decoded into memory only up to ``max_frames`` frames and ``max_clip_mb`` of
pixels; a longer one is refused with a message saying so, never cut short.

Failures (a missing, unreadable, empty or too long video, an encoder that raises or returns
NaN/inf or a wrong shape): the service replies success=false with the reason, an EMPTY embedding
(0 tokens, 0 dims, source and encoder_id set) replaces the last one so a policy holds instead of
running the previous task's prompt, /diagnostics says ERROR with the reason, and the node keeps
serving; the next good video recovers. A ``video_path`` given at start that fails is handled the
same way (it is a video, not a configuration). A bad parameter or an encoder plugin that cannot
be loaded ends the node at start with exit code 2 and one line naming it.

Encoding runs in the service callback (or the clip timer): while a video is encoded, frames on
``frames_topic`` (best effort, like the camera's) may be dropped, and the next request waits.
"""

from __future__ import annotations

import array
import sys
import time
from typing import Any

import numpy as np
from human_video_policy_msgs.msg import PromptEmbedding
from human_video_policy_msgs.srv import EncodePromptVideo
from sensor_msgs.msg import Image

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.nodes.base import DiagnosticsReport, HvpNode, Level, run_node
from human_video_policy.nodes.conversions import image_to_rgb
from human_video_policy.nodes.qos import LATCHED, SENSOR_DATA
from human_video_policy.runtime.prompt_encoders import (
    MIB,
    FrameClip,
    PromptEmbedder,
    PromptResult,
    make_prompt_encoder,
    parse_encoder_args,
)
from human_video_policy.validation import check_int_range, check_range

EMBEDDING_TOPIC = "/prompt/embedding"
MAX_PATH_CHARS = 4096  # PATH_MAX on Linux: a longer request is refused before any file access


class PromptEncoderNode(HvpNode):
    """Encodes prompt videos with one frozen encoder; see the module docstring."""

    default_name = "prompt_encoder"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        encoder_name = self.param(
            "encoder",
            "keyframes",
            "Prompt encoder (runtime/prompt_encoders.py): keyframes (baseline, no weights) or an "
            "installed plugin's name (entry-point group human_video_policy.prompt_encoders).",
        )
        encoder_args = self.param(
            "encoder_args",
            "",
            'JSON object of keyword arguments for the encoder, e.g. {"num_tokens": 8}; "" = none.',
        )
        video_path = self.param(
            "video_path", "", "Video file to encode at start; empty = wait for ~/encode or frames."
        )
        self.frames_topic = self.param(
            "frames_topic",
            "",
            "Image topic (rgb8/bgr8) whose frames form prompt clips, e.g. the camera node's "
            "/camera/camera/color/image_raw; empty = off.",
        )
        self.clip_gap_s = self.param(
            "clip_gap_s",
            1.0,
            "frames_topic: a clip ends when no frame came for this long (s).",
            lambda n, v: check_range(n, v, 0.05, 60.0),
        )
        self.max_frames = self.param(
            "max_frames",
            900,
            "Most frames decoded or collected for one clip; a longer video is refused.",
            lambda n, v: check_int_range(n, v, 1, 100_000),
        )
        max_clip_mb = self.param(
            "max_clip_mb",
            2048,
            "Most memory for one clip's decoded RGB frames (MiB), and the largest video file "
            "read; a larger one is refused.",
            lambda n, v: check_int_range(n, v, 1, 1 << 20),
        )
        cache_size = self.param(
            "cache_size",
            8,
            "Embeddings kept by content hash (SHA-256 of the file or frames); 0 = no cache.",
            lambda n, v: check_int_range(n, v, 0, 10_000),
        )
        encoder = make_prompt_encoder(encoder_name, **parse_encoder_args(encoder_args))
        self.embedder = PromptEmbedder(encoder, self.max_frames, max_clip_mb * MIB, cache_size)
        self.encoder_id = self.embedder.encoder_id

        self._pub = self.create_publisher(PromptEmbedding, EMBEDDING_TOPIC, LATCHED)
        self.create_service(EncodePromptVideo, "~/encode", self._on_encode)
        self._clip: FrameClip | None = None
        self._last_frame = 0.0
        self.invalid_frames = 0
        if self.frames_topic:
            try:
                self.create_subscription(Image, self.frames_topic, self._on_frame, SENSOR_DATA)
            except Exception as exc:  # rclpy's InvalidTopicNameException and kin
                why = (str(exc).splitlines() or [type(exc).__name__])[0].rstrip(": ")
                raise ConfigError(
                    f"parameter frames_topic={self.frames_topic!r} is invalid: {why}"
                ) from None
            self.create_wall_timer(min(0.05, self.clip_gap_s / 4), self._end_clip_after_gap)
            self.frames_topic = self.topic(self.frames_topic)

        # reports
        self.encodings = 0  # encoder runs that gave an embedding
        self.published = 0  # embeddings published (encoded or from the cache)
        self.failures = 0
        self.last_encode_ms = float("nan")
        self.last_source = ""
        self.last_shape = (0, 0)
        self.last_frames = 0
        self.last_error = ""
        self.enable_diagnostics()
        self.get_logger().info(
            f"encoder {self.encoder_id} ({encoder_name}); ~/encode, "
            f"{'frames from ' + self.frames_topic if self.frames_topic else 'no frames topic'}; "
            f"max_frames {self.max_frames}, cache {cache_size}"
        )
        if video_path:
            self.encode_file(video_path)

    # -- requests --------------------------------------------------------------------------
    def _on_encode(
        self, request: EncodePromptVideo.Request, response: EncodePromptVideo.Response
    ) -> EncodePromptVideo.Response:
        result, message = self.encode_file(request.video_path)
        response.success = result is not None
        response.message = message
        response.encoder_id = self.encoder_id
        if result is not None:
            response.num_tokens, response.dims = result.shape
            response.encode_ms = float(result.encode_ms)
            response.cached = result.cached
        return response

    def encode_file(self, path: str) -> tuple[PromptResult | None, str]:
        """Encode the video file ``path`` and publish; (result or None, one-line message)."""
        if not path.strip():
            return None, self._failed("", "video_path is empty: name a video file")
        if len(path) > MAX_PATH_CHARS:
            reason = f"video_path is {len(path)} characters long: at most {MAX_PATH_CHARS}"
            return None, self._failed(path[:MAX_PATH_CHARS], reason)
        try:
            result = self.embedder.embed_file(path)
        except InputError as exc:
            return None, self._failed(path, str(exc))
        except Exception as exc:  # whatever a hostile file makes the decoder raise
            return None, self._failed(path, f"{path}: {type(exc).__name__}: {exc}")
        return result, self._publish(path, result)

    def _on_frame(self, msg: Image) -> None:
        if self._clip is None:
            self._clip = FrameClip(
                self.max_frames,
                self.embedder.max_bytes,
                f"clip on {self.frames_topic}",
                size=self.embedder.input_size,
            )
        self._last_frame = time.monotonic()
        try:
            rgb = image_to_rgb(msg)
        except InputError as exc:
            self.invalid_frames += 1
            self._clip.reject(str(exc))
            return
        self._clip.add(rgb)

    def _end_clip_after_gap(self) -> None:
        clip = self._clip
        if clip is None or time.monotonic() - self._last_frame < self.clip_gap_s:
            return
        self._clip = None
        source = f"topic:{self.frames_topic}"
        try:
            result = self.embedder.embed_frames(clip.frames(), f"clip on {self.frames_topic}")
        except InputError as exc:
            self._failed(source, str(exc))
            return
        except Exception as exc:  # never let a clip end the node
            self._failed(source, f"{source}: {type(exc).__name__}: {exc}")
            return
        self._publish(source, result)

    # -- publishing ------------------------------------------------------------------------
    def _publish(self, source: str, result: PromptResult) -> str:
        tokens, dims = result.shape
        self._pub.publish(self._message(source, result.embedding))
        self.published += 1
        self.encodings += not result.cached
        self.last_encode_ms = result.encode_ms
        self.last_source, self.last_shape, self.last_error = source, (tokens, dims), ""
        self.last_frames = result.frames
        how = "from the cache" if result.cached else f"in {result.encode_ms:.1f} ms"
        message = (
            f"published {tokens}x{dims} embedding of {source} ({result.frames} frames) {how} "
            f"(sha256 {result.content_sha256[:12]})"
        )
        self.get_logger().info(message)
        return message

    def _failed(self, source: str, reason: str) -> str:
        """Publish the empty embedding (a policy holds) and report ``reason``."""
        self._pub.publish(self._message(source, None))
        self.failures += 1
        self.last_source, self.last_shape, self.last_error = source, (0, 0), reason
        self.last_frames = 0
        self.get_logger().error(f"no prompt embedding: {reason}")
        self.publish_diagnostics()  # the ERROR goes out now, not at the next period
        return reason

    def _message(self, source: str, embedding: np.ndarray | None) -> PromptEmbedding:
        msg = PromptEmbedding()
        msg.header.stamp = self.now_msg()
        msg.source = source
        msg.encoder_id = self.encoder_id
        if embedding is not None:
            msg.num_tokens, msg.dims = (int(n) for n in embedding.shape)
            msg.data = array.array("f", np.ascontiguousarray(embedding, "<f4").tobytes())
        return msg

    # -- reports ---------------------------------------------------------------------------
    def diagnostics_report(self) -> DiagnosticsReport:
        clip = self._clip
        values = {
            "encoder_id": self.encoder_id,
            "encode_ms_last": self.last_encode_ms,
            "cache_hits": self.embedder.hits,
            "cache_misses": self.embedder.misses,
            "cache_entries": len(self.embedder.cache),
            "encodings": self.encodings,
            "published": self.published,
            "failures": self.failures,
            "last_source": self.last_source,
            "last_shape": f"{self.last_shape[0]}x{self.last_shape[1]}",
            "last_frames": self.last_frames,
            "last_error": self.last_error,
            "frames_topic": self.frames_topic,
            "clip_frames": clip.count if clip is not None else 0,
            "invalid_frames": self.invalid_frames,
        }
        if self.last_error:
            return DiagnosticsReport(Level.ERROR, self.last_error, values)
        if not self.last_source:
            return DiagnosticsReport(Level.OK, "waiting for a prompt video", values)
        tokens, dims = self.last_shape
        return DiagnosticsReport(
            Level.OK, f"prompt {tokens}x{dims} from {self.last_source}", values
        )


def main(args: list[str] | None = None) -> int:
    return run_node(PromptEncoderNode, args)


if __name__ == "__main__":
    sys.exit(main())
