"""Legacy programs rewritten by ``python -m compat migrate`` run unchanged on compat.

The programs in ``legacy_programs/`` are written against dashscope the ways users wrote them
(module style, mixed imports, ``dashscope.common.error`` in ``except`` clauses, type modules in
annotations and ``isinstance`` checks). Each is rewritten into a temporary directory by the CLI,
then run as a subprocess under ``python -m compat.testing -- ...`` on each backend, and its
output compared with the exact expected output; the original program, run on dashscope against
the emulator's Assistant API, must print the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAMS = Path(__file__).parent / "legacy_programs"
BACKENDS = ("assistants", "responses")

TUTOR_OUTPUT = """\
skipped a question: thread_id and content are required!
questions added: 1
run queued
run completed, 166 tokens
Let's work through this step by step: How do I print a table of the sine function in Python?
The sine function maps an angle x (in radians) to the height of the point at that angle on the \
unit circle. Let me compute a few values with Python.The values rise from 0 to 1 at x = pi/2, \
fall to -1 at x = 3pi/2 and return to 0 at x = 2pi: one full period of the sine wave.
--- code ---
import math

for step in range(9):
    x = step * math.pi / 4
    bar = "#" * round(10 * (math.sin(x) + 1))
    print(f"x = {x:5.3f}  sin(x) = {math.sin(x):+.3f}  |{bar}")
--- output ---
x = 0.000  sin(x) = +0.000  |##########
x = 0.785  sin(x) = +0.707  |#################
x = 1.571  sin(x) = +1.000  |####################
x = 2.356  sin(x) = +0.707  |#################
x = 3.142  sin(x) = +0.000  |##########
x = 3.927  sin(x) = -0.707  |###
x = 4.712  sin(x) = -1.000  |
x = 5.498  sin(x) = -0.707  |###
x = 6.283  sin(x) = -0.000  |##########
steps: [('message_creation', 'completed'), ('tool_calls', 'completed'), \
('message_creation', 'completed')]
roles: ['user', 'assistant', 'assistant']
"""

SUPPORT_DESK_OUTPUT = """\
ticket 1: completed, is a Run: True
  tokens: 21 in, 24 out
  reply: You said: "My invoice shows the wrong address.". This is the emulator's deterministic \
answer.
  steps: ['message_creation']
ticket 2: rejected (InputRequired: thread_id and content are required!)
ticket 3: completed, is a Run: True
  tokens: 51 in, 22 out
  reply: You said: "How do I reset my password?". This is the emulator's deterministic answer.
  steps: ['message_creation']
thread holds 4 messages
"""

TYPED_HANDLERS_OUTPUT = """\
no model given: Model is required!
assistant Greeter (qwen-plus)
[created: queued][queued: queued][in_progress: in_progress][step message_creation in_progress]\
[step message_creation in_progress]You said: "Hello there!". This is the emulator's \
deterministic answer.[step message_creation completed][completed: completed]
"""

EXPECTED_OUTPUT = {
    "tutor_module_style.py": TUTOR_OUTPUT,
    "support_desk_mixed.py": SUPPORT_DESK_OUTPUT,
    "typed_stream_handlers.py": TYPED_HANDLERS_OUTPUT,
}

EXPECTED_REPORT = """\
support_desk_mixed.py:10: MIG001 from dashscope import Assistants, Messages, Runs, Steps, \
Threads -> from compat
support_desk_mixed.py:11: MIG003 from dashscope.common.error import InputRequired -> from \
compat.errors
support_desk_mixed.py:11: MIG102 dashscope.common.error.UnsupportedModel: not in compat.errors; \
left on dashscope
support_desk_mixed.py:12: MIG004 from dashscope.threads.thread_types import Run, ThreadMessage, \
ThreadMessageList -> from compat.types
tutor_module_style.py:19: MIG002 dashscope.Assistants -> compat.Assistants
tutor_module_style.py:34: MIG002 dashscope.Messages -> compat.Messages
tutor_module_style.py:35: MIG003 dashscope.common.error.InputRequired -> \
compat.errors.InputRequired
tutor_module_style.py:43: MIG002 dashscope.Runs -> compat.Runs
tutor_module_style.py:71: MIG002 dashscope.Threads -> compat.Threads
tutor_module_style.py:74: MIG002 dashscope.Steps -> compat.Steps
tutor_module_style.py:76: MIG002 dashscope.Messages -> compat.Messages
typed_stream_handlers.py:10: MIG005 from dashscope.assistants import assistant_types: no use \
left, removed
typed_stream_handlers.py:11: MIG005 from dashscope.common import error: no use left, removed
typed_stream_handlers.py:12: MIG005 from dashscope.threads import thread_types: no use left, \
removed
typed_stream_handlers.py:17: MIG101 dashscope.Files: compat has no file API; left on dashscope
typed_stream_handlers.py:20: MIG004 assistant_types.Assistant -> compat.types.Assistant
typed_stream_handlers.py:21: MIG002 ds.Assistants -> compat.Assistants
typed_stream_handlers.py:25: MIG004 thread_types.ThreadMessageDelta -> \
compat.types.ThreadMessageDelta
typed_stream_handlers.py:27: MIG004 thread_types.Run -> compat.types.Run
typed_stream_handlers.py:29: MIG004 thread_types.RunStep -> compat.types.RunStep
typed_stream_handlers.py:37: MIG003 error.ModelRequired -> compat.errors.ModelRequired
typed_stream_handlers.py:41: MIG002 ds.Runs -> compat.Runs
compat migrate: 3 files rewritten, 0 files left unchanged
"""


def _selected_backends() -> tuple[str, ...]:
    chosen = os.environ.get("COMPAT_BACKEND")
    return (chosen,) if chosen else BACKENDS


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _start_on_emulator(program: Path, **env: str) -> subprocess.Popen[str]:
    """``python -m compat.testing -- python PROGRAM``, started."""
    return subprocess.Popen(
        [sys.executable, "-m", "compat.testing", "--", sys.executable, program.name],
        cwd=program.parent,
        env={**os.environ, "COMPAT_STORE": "memory", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the legacy programs, rewritten in place by ``python -m compat migrate --write``."""
    directory = tmp_path_factory.mktemp("migrated")
    for program in EXPECTED_OUTPUT:
        shutil.copy(PROGRAMS / program, directory / program)
    done = _run([sys.executable, "-m", "compat", "migrate", "--write", "."], directory)
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    assert done.stderr == EXPECTED_REPORT
    return directory


def test_every_legacy_program_has_an_expected_output() -> None:
    assert sorted(p.name for p in PROGRAMS.glob("*.py")) == sorted(EXPECTED_OUTPUT)


def test_the_rewritten_programs_no_longer_use_dashscope_for_the_assistant_api(
    migrated: Path,
) -> None:
    for program in EXPECTED_OUTPUT:
        code = (migrated / program).read_text()
        assert code != (PROGRAMS / program).read_text()
        code = code.split('"""', 2)[2]  # past the docstring, which quotes the legacy forms
        for legacy in ("dashscope.Runs", "dashscope.common.error.", "thread_types.", "ds.Runs"):
            assert legacy not in code, (program, legacy)
    check = _run([sys.executable, "-m", "compat", "migrate", "--check", "."], migrated)
    assert check.returncode == 0, check.stderr


@pytest.fixture(scope="module")
def outputs(migrated: Path) -> dict[tuple[str, str], str]:
    """(program, backend or "dashscope") → stdout of every run, all started at once.

    The runs wait on their emulators (``Runs.wait`` polls each second) more than they compute,
    so they overlap; each has its own emulator and memory store.
    """
    started: dict[tuple[str, str], subprocess.Popen[str]] = {}
    for program in sorted(EXPECTED_OUTPUT):
        for backend in _selected_backends():
            started[program, backend] = _start_on_emulator(
                migrated / program, COMPAT_BACKEND=backend
            )
        started[program, "dashscope"] = _start_on_emulator(PROGRAMS / program)
    finished: dict[tuple[str, str], str] = {}
    for key, process in started.items():
        stdout, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, (key, stderr)
        finished[key] = stdout
    return finished


@pytest.mark.parametrize("backend", _selected_backends())
@pytest.mark.parametrize("program", sorted(EXPECTED_OUTPUT))
def test_a_rewritten_program_runs_unchanged_on_compat(
    outputs: dict[tuple[str, str], str], program: str, backend: str
) -> None:
    assert outputs[program, backend] == EXPECTED_OUTPUT[program]


@pytest.mark.parametrize("program", sorted(EXPECTED_OUTPUT))
def test_the_original_program_prints_the_same_on_dashscope(
    outputs: dict[tuple[str, str], str], program: str
) -> None:
    assert outputs[program, "dashscope"] == EXPECTED_OUTPUT[program]
