"""Many videos -> one output folder: resumable, failure-tolerant, locally or over Ray.

- **Resumable.** A video whose ``OUT/<video_id>/video.json`` says ``ok`` or ``empty`` with the
  same config hash is skipped; ``force`` redoes it; a ``failed`` one is always retried.
- **Atomic.** A video's folder is built under a hidden temporary name and renamed into place, so
  a killed run leaves either the old result or the new one, never a mix.
- **Failure-tolerant.** A video that raises is retried up to ``max_retries`` times, then written
  as ``status: failed`` with the error text, and the batch goes on.
- **Ray.** With ``use_ray`` the videos are Ray tasks (one CPU each) on the cluster at
  ``ray_address`` or on a local instance with ``workers`` CPUs. Workers return their results to
  the driver, which writes them, so the output folder need not be shared with the workers and
  the layout is the same as a local run.

``video_id`` = file stem + 8 hex digits of a content fingerprint (size, first and last MiB), so
ids survive moving the files and two different videos with the same name do not collide.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from human_video_policy.errors import ConfigError
from human_video_policy.pipeline.episode_format import (
    VIDEO_RECORD_NAME,
    read_video_record,
    write_episode,
    write_index,
    write_json_atomic,
)
from human_video_policy.pipeline.video_episodes import (
    VideoEpisodePipeline,
    VideoPipelineConfig,
    VideoResult,
)
from human_video_policy.validation import check_int_range

_FINGERPRINT_BYTES = 1 << 20


@dataclass(frozen=True)
class BatchConfig:
    """How a batch runs (not what it produces: that is :class:`VideoPipelineConfig`).

    Fields:
        out_dir: output folder (created if missing).
        force: redo videos that already have a finished result.
        max_retries: extra attempts for a video that raised (0..10) before it is reported failed.
        use_ray: distribute videos as Ray tasks.
        ray_address: address of a running Ray cluster (e.g. ``"ray://head:10001"`` or
            ``"auto"``); None starts a local Ray instance with ``workers`` CPUs.
        workers: CPUs of the local Ray instance (1..256); must be 1 without ``use_ray``.
        ray_temp_dir: Ray's session folder for a local instance (None = Ray's default).
        progress: show a tqdm progress bar on stderr (frames of the videos to process).
    """

    out_dir: Path
    force: bool = False
    max_retries: int = 1
    use_ray: bool = False
    ray_address: str | None = None
    workers: int = 1
    ray_temp_dir: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        check_int_range("max_retries", self.max_retries, 0, 10)
        check_int_range("workers", self.workers, 1, 256)
        if not self.use_ray and self.workers != 1:
            raise ConfigError(
                f"workers={self.workers!r} is invalid without Ray: a local run processes one "
                "video at a time (use --ray to run videos in parallel)"
            )
        if self.ray_address is not None and not self.use_ray:
            raise ConfigError("ray_address is set but use_ray is False")
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ConfigError(f"out_dir={str(self.out_dir)!r} is invalid: not a folder")


@dataclass
class VideoOutcome:
    """What happened to one video in a batch (``status``: ok, empty, failed or skipped)."""

    video_id: str
    source: str
    status: str
    error: str | None = None
    attempts: int = 0
    episodes: int = 0
    frames: int = 0
    seconds: float = 0.0


@dataclass
class BatchReport:
    """All outcomes of a batch, in input order."""

    outcomes: list[VideoOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[VideoOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def summary(self) -> str:
        counts = ", ".join(
            f"{self.count(s)} {s}" for s in ("ok", "empty", "failed", "skipped") if self.count(s)
        )
        return f"{len(self.outcomes)} video(s) in {self.seconds:.1f} s: {counts or 'nothing'}"


def video_id_for(path: str | Path) -> str:
    """``<stem>-<8 hex>``: readable, stable when the file moves, distinct for other content."""
    path = Path(path)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("._") or "video"
    digest = hashlib.sha1(usedforsecurity=False)
    try:
        size = path.stat().st_size
        digest.update(str(size).encode())
        with path.open("rb") as fh:
            digest.update(fh.read(_FINGERPRINT_BYTES))
            if size > _FINGERPRINT_BYTES:
                fh.seek(max(_FINGERPRINT_BYTES, size - _FINGERPRINT_BYTES))
                digest.update(fh.read(_FINGERPRINT_BYTES))
    except OSError:
        digest.update(str(path.resolve()).encode())  # unreadable: the failure is reported later
    return f"{stem[:60]}-{digest.hexdigest()[:8]}"


def is_finished(folder: Path, config_hash: str) -> bool:
    """True if ``folder`` holds an ok/empty result made with ``config_hash``."""
    record = read_video_record(folder)
    return (
        record is not None
        and record.get("status") in ("ok", "empty")
        and record.get("config_hash") == config_hash
    )


def _replace_folder(out_dir: Path, video_id: str, fill: Callable[[Path], None]) -> Path:
    """Build ``out_dir/video_id`` in a hidden temporary folder, then swap it in."""
    final = out_dir / video_id
    tmp = out_dir / f".{video_id}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        fill(tmp)
        if final.exists():
            old = out_dir / f".{video_id}.old-{uuid.uuid4().hex[:8]}"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def write_video_result(out_dir: str | Path, result: VideoResult) -> Path:
    """Write a video's episodes and ``video.json`` (atomically, replacing an older result)."""

    def fill(folder: Path) -> None:
        for episode in result.episodes:
            write_episode(folder, episode)
        write_json_atomic(folder / VIDEO_RECORD_NAME, result.record)

    return _replace_folder(Path(out_dir), result.record["video_id"], fill)


def failed_record(
    video_id: str, path: Path, error: str, attempts: int, config: VideoPipelineConfig
) -> dict[str, Any]:
    """The ``video.json`` of a video that could not be processed."""
    return {
        "video_id": video_id,
        "source": str(path.resolve()),
        "status": "failed",
        "error": error,
        "attempts": attempts,
        "config_hash": config.config_hash(),
        "config": asdict(config),
        "episodes": [],
    }


def _error_text(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)  # ray.exceptions.RayTaskError wraps the original
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip() or "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return f"{type(exc).__name__}: {text}"


# Ray workers are reused between tasks: keep one pipeline (tracker, retargeter) per config.
_WORKER_PIPELINES: dict[str, VideoEpisodePipeline] = {}


def _worker_pipeline(config: VideoPipelineConfig) -> VideoEpisodePipeline:
    key = config.config_hash()
    if key not in _WORKER_PIPELINES:
        _WORKER_PIPELINES[key] = VideoEpisodePipeline(config)
    return _WORKER_PIPELINES[key]


def process_in_worker(path: str, video_id: str, config: VideoPipelineConfig) -> VideoResult:
    """The Ray task body (also usable in-process)."""
    return _worker_pipeline(config).process(path, video_id)


@dataclass
class _Job:
    index: int
    path: Path
    video_id: str
    attempts: int = 0
    started: float = 0.0


def announced_frames(path: Path, max_frames: int = 0) -> int:
    """Frames the container announces (at most ``max_frames`` when > 0); 0 if unknown."""
    import cv2

    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # a bad file: said later
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT) if cap.isOpened() else 0.0
    finally:
        cap.release()
        cv2.utils.logging.setLogLevel(level)
    n = int(count) if count == count and count > 0 else 0  # NaN-safe
    return min(n, max_frames) if max_frames and n else n


class _Progress:
    """One tqdm bar over the frames of the videos to process: it advances per tracked frame
    (per finished video on Ray, whose workers report nothing before they return), says which
    video runs, and draws its final state once (when closed). On a terminal it redraws at most
    10 times a second; into a file or pipe at most every 30 s."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._bar: Any = None
        self._total = 0
        self._expected: dict[str, int] = {}
        self._counted: dict[str, int] = {}
        self._videos = 0
        self._finished = 0

    def begin(self) -> None:
        """Show the bar (after every video was added; nothing to process: no bar)."""
        from tqdm import tqdm

        from human_video_policy.hands.native_logs import original_stderr

        stream = original_stderr()  # the terminal, also while MediaPipe's noise is filtered
        tty = bool(getattr(stream, "isatty", lambda: False)())
        self._bar = tqdm(
            total=self._total,
            unit="frame",
            disable=not (self._enabled and self._videos),
            dynamic_ncols=True,
            mininterval=0.1 if tty else 30.0,
            file=stream,
        )

    def add(self, video_id: str, frames: int) -> None:
        """A video to process, announcing ``frames`` (0 = unknown)."""
        self._expected[video_id] = frames
        self._counted[video_id] = 0
        self._videos += 1
        self._total += frames

    def start(self, video_id: str) -> None:
        """An attempt at ``video_id`` starts (a retry counts its frames again)."""
        counted = self._counted.get(video_id, 0)
        if counted:
            self._counted[video_id] = 0
            self._bar.n -= counted
        k = self._finished + 1
        self._bar.set_postfix_str(f"video {k}/{self._videos} {video_id}", refresh=False)

    def _advance(self, n: int) -> None:
        if n <= 0:
            return
        if self._bar.n + n > self._bar.total:  # more frames than the container announced
            self._bar.total = self._bar.n + n
        if self._bar.n + n >= self._bar.total:
            self._bar.n += n  # the final state is drawn once, by close()
        else:
            self._bar.update(n)

    def frame(self, video_id: str) -> None:
        self._counted[video_id] = self._counted.get(video_id, 0) + 1
        self._advance(1)

    def done(self, outcome: VideoOutcome) -> None:
        """A processed video: the bar jumps to its end (a video that failed or ended early
        does not leave the bar short), the total is corrected to its real length."""
        vid = outcome.video_id
        if vid in self._expected:
            counted, expected = self._counted.pop(vid), self._expected.pop(vid)
            real = max(counted, outcome.frames)  # 0: failed before its first frame
            self._bar.total += real - expected
            self._finished += 1
            self._advance(real - counted)
        text = f"{self._finished}/{self._videos} videos, {vid}: {outcome.status}"
        self._bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def run_batch(
    videos: Sequence[str | Path],
    pipeline_config: VideoPipelineConfig | None = None,
    batch: BatchConfig | None = None,
) -> BatchReport:
    """Process ``videos`` into ``batch.out_dir``; returns one outcome per video, in order."""
    cfg = pipeline_config or VideoPipelineConfig()
    if batch is None:
        raise ConfigError("run_batch needs a BatchConfig with out_dir")
    if not videos:
        raise ConfigError("no videos given")
    out = batch.out_dir
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    config_hash = cfg.config_hash()
    jobs = [_Job(i, Path(v), video_id_for(v)) for i, v in enumerate(videos)]
    seen: dict[str, Path] = {}
    outcomes: list[VideoOutcome | None] = [None] * len(jobs)
    todo: list[_Job] = []
    progress = _Progress(batch.progress)
    try:
        for job in jobs:
            if job.video_id in seen:  # the same file twice in one batch
                outcomes[job.index] = VideoOutcome(job.video_id, str(job.path), "skipped")
                continue
            seen[job.video_id] = job.path
            _remove_stale_tmp(out, job.video_id)
            if not batch.force and is_finished(out / job.video_id, config_hash):
                outcomes[job.index] = _skipped(out, job)
            else:
                todo.append(job)
                progress.add(job.video_id, announced_frames(job.path, cfg.max_frames))

        def finish(job: _Job, result: VideoResult | None, error: str | None) -> None:
            outcome = _store(out, job, result, error, cfg)
            outcomes[job.index] = outcome
            progress.done(outcome)

        progress.begin()
        if todo and batch.use_ray:
            _run_ray(todo, cfg, batch, finish)
        elif todo:
            _run_local(todo, cfg, batch, finish, progress)
    finally:
        progress.close()
        write_index(out)
    return BatchReport([o for o in outcomes if o is not None], time.perf_counter() - start)


def _remove_stale_tmp(out: Path, video_id: str) -> None:
    for stale in out.glob(f".{video_id}.*-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _skipped(out: Path, job: _Job) -> VideoOutcome:
    record = read_video_record(out / job.video_id) or {}
    return VideoOutcome(
        job.video_id,
        str(job.path),
        "skipped",
        error=record.get("error"),
        episodes=len(record.get("episodes", [])),
        frames=int(record.get("frames", 0)),
    )


def _store(
    out: Path, job: _Job, result: VideoResult | None, error: str | None, cfg: VideoPipelineConfig
) -> VideoOutcome:
    seconds = time.perf_counter() - job.started
    if result is None:
        record = failed_record(job.video_id, job.path, error or "unknown error", job.attempts, cfg)
        write_json_atomic_folder(out, job.video_id, record)
        return VideoOutcome(
            job.video_id, str(job.path), "failed", record["error"], job.attempts, 0, 0, seconds
        )
    result.record["attempts"] = job.attempts
    write_video_result(out, result)
    return VideoOutcome(
        job.video_id,
        str(job.path),
        result.record["status"],
        result.record.get("error"),
        job.attempts,
        len(result.episodes),
        int(result.record.get("frames", 0)),
        seconds,
    )


def write_json_atomic_folder(out: Path, video_id: str, record: dict[str, Any]) -> Path:
    """Replace ``out/video_id`` by a folder holding only ``video.json`` (a failed video)."""
    return _replace_folder(
        out, video_id, lambda folder: write_json_atomic(folder / VIDEO_RECORD_NAME, record)
    )


def _run_local(
    todo: list[_Job],
    cfg: VideoPipelineConfig,
    batch: BatchConfig,
    finish: Callable[[_Job, VideoResult | None, str | None], None],
    progress: _Progress | None = None,
) -> None:
    with VideoEpisodePipeline(cfg) as pipeline:
        for job in todo:
            job.started = time.perf_counter()
            error = None
            result = None

            def on_frame(video_id: str = job.video_id) -> None:
                if progress is not None:
                    progress.frame(video_id)

            while job.attempts <= batch.max_retries:
                job.attempts += 1
                if progress is not None:
                    progress.start(job.video_id)
                try:
                    result = pipeline.process(job.path, job.video_id, on_frame=on_frame)
                    break
                except Exception as exc:  # recorded, the batch goes on
                    error = _error_text(exc)
            finish(job, result, None if result is not None else error)


def _run_ray(
    todo: list[_Job],
    cfg: VideoPipelineConfig,
    batch: BatchConfig,
    finish: Callable[[_Job, VideoResult | None, str | None], None],
) -> None:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if batch.ray_address is not None:
            ray.init(address=batch.ray_address, log_to_driver=False)
        else:
            ray.init(
                num_cpus=batch.workers,
                include_dashboard=False,
                log_to_driver=False,
                _temp_dir=batch.ray_temp_dir,
                _node_ip_address="127.0.0.1",  # a local instance stays on loopback
            )
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(process_in_worker)
        pending: dict[Any, _Job] = {}

        def submit(job: _Job) -> None:
            job.attempts += 1
            if job.attempts == 1:
                job.started = time.perf_counter()
            pending[task.remote(str(job.path), job.video_id, cfg)] = job

        for job in todo:
            submit(job)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except Exception as exc:  # the task raised or its worker died
                if job.attempts <= batch.max_retries:
                    submit(job)
                else:
                    finish(job, None, _error_text(exc))
                continue
            finish(job, result, None)
    finally:
        if started_here:
            ray.shutdown()
