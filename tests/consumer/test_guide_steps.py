"""Every command of migration_guide.md's "Migration, step by step", run verbatim, in order.

The commands are parsed out of the section's ```bash blocks and run with bash in a small legacy
project (``app.py``, ``tests/``, ``thread_ids.txt``) against the emulator; ``python`` is the
interpreter running this test. Each must exit 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from compat.testing import Emulator

dashscope = pytest.importorskip("dashscope")
pytest.importorskip("openai")
pytest.importorskip("libcst")

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "migration_guide.md"

APP = '''\
"""A legacy program: one streamed answer."""

from dashscope import Assistants, Runs, Threads


def main():
    assistant = Assistants.create(model="qwen-plus", name="Helper", instructions="Be brief.")
    thread = Threads.create(messages=[{"role": "user", "content": "hello"}])
    status = None
    for event, data in Runs.create(thread.id, assistant_id=assistant.id, stream=True):
        if event == "thread.message.delta":
            print(data.delta.content.text.value, end="")
        if event == "thread.run.completed":
            status = data.status
    print()
    return status


if __name__ == "__main__":
    raise SystemExit(0 if main() == "completed" else 1)
'''

TEST = """\
import app


def test_app_answers():
    assert app.main() == "completed"
"""


def guide_commands() -> list[str]:
    """The commands of the step-by-step section, in order."""
    text = GUIDE.read_text("utf-8")
    start = text.index("## Migration, step by step")
    end = text.index("\n## ", start + 1)
    blocks = re.findall(r"```bash\n(.*?)```", text[start:end], re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_the_section_lists_the_whole_path() -> None:
    commands = guide_commands()
    assert [c.split(" -", 1)[0] for c in commands[:2]] == ["python"] * 2
    for needle in (
        "migrate --diff",
        "migrate --write",
        "COMPAT_BACKEND=assistants",
        "COMPAT_BACKEND=responses python -m compat.testing",
        "doctor --check",
        "import --all-assistants",
        "COMPAT_BACKEND=shadow",
        "shadow-report",
        "COMPAT_BACKEND=responses python app.py",
    ):
        assert any(needle in c for c in commands), needle


def test_every_documented_command_runs(compat_emulator: Emulator, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "app.py").write_text(APP, "utf-8")
    (project / "tests" / "test_app.py").write_text(TEST, "utf-8")
    (project / "tests" / "conftest.py").write_text(
        "import sys, pathlib\nsys.path.insert(0, str(pathlib.Path(__file__).parents[1]))\n",
        "utf-8",
    )
    # what the application keeps: the ids of threads it created on the Assistant API
    assistant = dashscope.Assistants.create(model="qwen-plus", name="Kept")
    ids = []
    for question in ("first?", "second?"):
        thread = dashscope.Threads.create(messages=[{"role": "user", "content": question}])
        run = dashscope.Runs.create(thread.id, assistant_id=assistant.id)
        dashscope.Runs.wait(run.id, thread_id=thread.id)
        ids.append(thread.id)
    (project / "thread_ids.txt").write_text("\n".join(ids) + "\n", "utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # a wrapper, not a symlink: a symlinked venv interpreter would not find its venv
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', "utf-8")
    (bin_dir / "python").chmod(0o755)
    env = {**os.environ, **compat_emulator.env()}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["COMPAT_STORE"] = str(project / "store.sqlite3")
    env.pop("COMPAT_BACKEND", None)
    env.pop("PYTEST_ADDOPTS", None)
    for command in guide_commands():
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        if "migrate --write" in command:
            assert (
                "from compat import Assistants, Runs, Threads" in (project / "app.py").read_text()
            )
        if command.startswith("python -m compat shadow-report"):
            assert "runs compared: 1\nidentical:     1\n" in done.stdout
        if command.endswith("thread_ids.txt"):
            assert done.stdout.startswith("import: added ")
    from compat.store import open_store

    store = open_store(project / "store.sqlite3")
    try:
        assert all(store.get("thread", thread_id) is not None for thread_id in ids)
    finally:
        store.close()
