"""Video input: decoded RGB frames with index and timestamp (:mod:`.reader`)."""

from human_video_policy.video.reader import VideoFrame, VideoReader

__all__ = ["VideoFrame", "VideoReader"]
