"""Installs human_video_policy with pip (virtual environment) or colcon (ament_python).

Data files (config/, launch/, urdf/, mjcf/, assets/) go to share/human_video_policy, and the
node executables to lib/human_video_policy, which is where `ros2 run` and `ros2 launch` look.
"""

from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "human_video_policy"
ROOT = Path(__file__).resolve().parent


def tree(folder: str, install_root: str) -> list[tuple[str, list[str]]]:
    """data_files entries reproducing folder/ under install_root/folder/."""
    entries: dict[str, list[str]] = {}
    for path in sorted((ROOT / folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.relative_to(ROOT)
            entries.setdefault(str(Path(install_root) / rel.parent), []).append(str(rel))
    return sorted(entries.items())


share = f"share/{PACKAGE}"
data_files = [
    ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
    (share, ["package.xml"]),
    (f"lib/{PACKAGE}", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "scripts/ros").glob("*"))),
]
for folder in ("config", "launch", "urdf", "mjcf", "assets"):
    data_files += tree(folder, share)

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Learn robot manipulation from videos of human hands (ROS 2).",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=data_files,
    install_requires=[
        "numpy>=1.26",
        "pyyaml>=6",
        "onnxruntime>=1.18",
        "mujoco>=3.1",
        "pin>=3",
        "tqdm>=4.60",
    ],
    extras_require={
        "train": ["torch==2.13.0", "onnx>=1.16", "onnxscript>=0.1", "tensorboard>=2.14"],
        "dev": ["pytest>=8", "pytest-timeout>=2", "ruff>=0.6"],
    },
    entry_points={
        "console_scripts": ["hvp = human_video_policy.cli.main:main"],
        # Built-in runtime policies that live above the runtime layer register the way an
        # outside package does (runtime/policy_plugins.py).
        "human_video_policy.runtime_policies": [
            "scripted_expert = human_video_policy.sim.scripted_expert_policy:make_scripted_expert",
        ],
    },
    zip_safe=False,
)
