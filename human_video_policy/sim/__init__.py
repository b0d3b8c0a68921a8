"""MuJoCo simulation: the WidowX reach world, its task, the scripted expert, evaluation.

Rendering is offscreen: with no display, ``MUJOCO_GL`` defaults to ``egl``. It is set here,
before any module of this package imports mujoco (MuJoCo picks its GL backend at import), so
``python -m human_video_policy.training.record_demos`` and the like render headless whatever
they import first. Set ``MUJOCO_GL`` yourself (glfw, osmesa) to choose otherwise.
"""

import os

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"
