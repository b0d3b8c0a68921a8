"""The README's examples work from a fresh clone (issue 14 item 11): every file a command example
names is in the repository (or is made by the example itself), the sample hand video ships with
its licence and source, and no user-facing page sends readers to ../shared/, which only this
workspace has."""

from __future__ import annotations

import re
import runpy
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_VIDEO = ROOT / "assets" / "examples" / "human_hand_video.mp4"

# options whose value is a file or folder the command writes
OUTPUT_OPTIONS = {"-o", "--out", "--output", "--save", "--save-image", ">"}
# a config override naming the folder a command writes (hvp train ... train.output_dir=runs/x)
OUTPUT_OVERRIDE = re.compile(r"[\w.\[\]]*output_dir=(.+)")
# made by an earlier step every example starts from (README "Quick start")
MADE_BY_SETUP = (".venv/",)
FILE_SUFFIX = re.compile(
    r"\.(mp4|mov|avi|mkv|npz|npy|yaml|yml|onnx|json|png|jpg|py|sh|txt|mcap|db3|rrd|md)$"
)


def bash_blocks(markdown: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", markdown, flags=re.DOTALL)


def commands(block: str) -> list[list[str]]:
    """The block's commands as tokens (comments dropped, ``&&`` / ``;`` split)."""
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        tokens = shlex.split(line, comments=True)
        current: list[str] = []
        for token in tokens:
            if token in ("&&", ";", "||", "|"):
                out.append(current)
                current = []
            else:
                current.append(token)
        out.append(current)
    return [c for c in out if c]


def is_path(token: str) -> bool:
    if token.startswith(("-", "/", "http://", "https://", "~")) or ":=" in token or "=" in token:
        return False  # an option, a ROS topic or absolute path, a URL, a name:=value
    return "/" in token or bool(FILE_SUFFIX.search(token))


def missing_paths(markdown: str, root: Path = ROOT) -> list[str]:
    """Paths named in ``markdown``'s bash blocks that neither exist under ``root`` nor are
    written by an earlier command of the same block (``-o out/`` makes ``out/...``)."""
    missing = []
    for block in bash_blocks(markdown):
        outputs: list[str] = []
        for tokens in commands(block):
            for i, token in enumerate(tokens):
                written = OUTPUT_OVERRIDE.fullmatch(token)  # hvp train ... train.output_dir=X
                if written:
                    outputs.append(written.group(1).rstrip("/"))
                    continue
                if i > 0 and tokens[i - 1] in OUTPUT_OPTIONS:
                    outputs.append(token.rstrip("/"))
                    continue
                if not is_path(token) or token.startswith(MADE_BY_SETUP):
                    continue
                if any(token == o or token.startswith(o + "/") for o in outputs):
                    continue
                if not any(root.glob(token)) and not (root / token).exists():
                    missing.append(f"{token}  (in: {' '.join(tokens)})")
    return missing


def test_every_file_a_readme_example_names_is_in_the_repository() -> None:
    missing = missing_paths((ROOT / "README.md").read_text(encoding="utf-8"))
    assert not missing, "README examples name files a fresh clone lacks:\n" + "\n".join(missing)


def test_the_check_finds_a_missing_file_and_accepts_outputs(tmp_path: Path) -> None:
    (tmp_path / "in.mp4").write_bytes(b"")
    text = (
        "```bash\nhvp video process in.mp4 -o out/   # a comment with gone.mp4\n"
        "hvp video show out/in-*/episode_001_right.npz -o episode.mp4\n"
        "hvp dataset from-video out/ -o ds && hvp dataset info ds\n```\n"
    )
    assert missing_paths(text, tmp_path) == []
    bad = "```bash\nhvp video process my_hand_video.mp4 -o out/\n```\n"
    assert len(missing_paths(bad, tmp_path)) == 1


def test_the_example_video_ships_with_its_licence_and_source() -> None:
    assert EXAMPLE_VIDEO.is_file() and 0.5e6 < EXAMPLE_VIDEO.stat().st_size < 1e6
    folder = EXAMPLE_VIDEO.parent
    licence = (folder / "LICENSE").read_text(encoding="utf-8")
    assert "MIT License" in licence and "Copyright (c) 2023 Yuzhe Qin" in licence
    source = (folder / "SOURCE.md").read_text(encoding="utf-8")
    assert "https://github.com/dexsuite/dex-retargeting" in source and "MIT" in source
    assert "Yuzhe Qin" in source


def test_setup_py_installs_the_example_video_with_its_licence(monkeypatch) -> None:
    import setuptools

    captured = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: captured.update(kw))
    runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    installed = {
        str(Path(folder) / Path(f).name) for folder, files in captured["data_files"] for f in files
    }
    for name in ("human_hand_video.mp4", "LICENSE", "SOURCE.md"):
        assert f"share/human_video_policy/assets/examples/{name}" in installed, name


@pytest.mark.parametrize(
    "page", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))]
)
def test_no_user_page_points_at_the_workspace_shared_folder(page: str) -> None:
    path = ROOT / page if page == "README.md" else ROOT / "docs" / page
    hits = [
        f"{page}:{n}: {line.strip()}"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"(\.\./|/work/)shared/", line)
    ]
    assert not hits, "\n".join(hits)
