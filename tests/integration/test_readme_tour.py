"""The README's tour runs as written, through the real `mosaic` console script."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def tour_blocks() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Five-minute tour"):text.index("Other useful commands:")]
    return re.findall(r"```bash\n(.*?)```", section, re.S)


def run(script: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    # The README exports its own data dir; the test points it at a temp dir instead.
    script = script.replace("MOSAIC_DATA_DIR=/tmp/mosaic-tour", f"MOSAIC_DATA_DIR={data_dir}")
    script = script.replace("/tmp/mosaic-tour/", f"{data_dir}/")
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                          cwd=README.parent)


def test_tour_merges_and_conflict_is_reported(tmp_path: Path) -> None:
    blocks = tour_blocks()
    assert len(blocks) == 2
    first = run("set -e\n" + blocks[0], tmp_path)
    assert first.returncode == 0, first.stderr
    graph = first.stdout.splitlines()[-5:]
    assert "Merge pull request #1 from feature/hello" in graph[0]
    assert "Add hello" in graph[2] and "Initial commit" in graph[4]
    parents = subprocess.run(["git", f"--git-dir={tmp_path}/git/acme/api.git", "rev-list", "--parents",
                              "-n1", "main"], capture_output=True, text=True, check=True).stdout.split()
    assert len(parents) == 3  # the merge commit and its two parents

    prelude = f"export PATH=$PATH MOSAIC_DATA_DIR={tmp_path}\n"
    second = run(prelude + blocks[1].replace("jq -r .sha", "python3 -c 'import json,sys;"
                                             "print(json.load(sys.stdin)[\"sha\"])'"), tmp_path)
    assert second.returncode == 5, second.stderr
    assert "error (conflict): merge conflict in hello.txt" in " ".join(second.stderr.split())
