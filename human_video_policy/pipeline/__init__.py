"""Offline data pipeline: human hand videos -> self-describing per-hand episode files.

- :mod:`.episode_format`: the on-disk layout (``video.json``, ``episode_*.npz``, ``index.jsonl``)
  with its writer, reader and validation.
- :mod:`.video_episodes`: one video -> episodes (decode, track, lift, clean, wrist poses, joint
  angles, 51-d actions, retargeting, segmentation, primitives and captions).
- :mod:`.batch`: many videos, resumable, locally or over a Ray cluster.
"""
