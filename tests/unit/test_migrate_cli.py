"""``python -m compat migrate`` run as a real subprocess: modes, exit codes, files, reports."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

LEGACY = (
    "import dashscope\n"
    "\n"
    'dashscope.api_key = "sk-test"\n'
    'run = dashscope.Runs.create("thread_1", assistant_id="asst_1")  # go\n'
)
MIGRATED = (
    "import dashscope\n"
    "import compat\n"
    "\n"
    'dashscope.api_key = "sk-test"\n'
    'run = compat.Runs.create("thread_1", assistant_id="asst_1")  # go\n'
)
DIFF = (
    "--- a/app.py\n"
    "+++ b/app.py\n"
    "@@ -1,4 +1,5 @@\n"
    " import dashscope\n"
    "+import compat\n"
    " \n"
    ' dashscope.api_key = "sk-test"\n'
    '-run = dashscope.Runs.create("thread_1", assistant_id="asst_1")  # go\n'
    '+run = compat.Runs.create("thread_1", assistant_id="asst_1")  # go\n'
)


def _compat(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compat", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(LEGACY)
    (tmp_path / "clean.py").write_text("from compat import Runs\n")
    return tmp_path


def test_diff_is_the_default_prints_a_patch_and_writes_nothing(project: Path) -> None:
    for args in (["migrate", "app.py"], ["migrate", "--diff", "app.py"]):
        done = _compat(*args, cwd=project)
        assert done.returncode == 0, done.stderr
        assert done.stdout == DIFF
        assert done.stderr == (
            "app.py:4: MIG002 dashscope.Runs -> compat.Runs\n"
            "compat migrate: 1 file would be rewritten, 0 files left unchanged\n"
        )
        assert (project / "app.py").read_text() == LEGACY


def test_the_diff_splits_lines_where_python_does(tmp_path: Path) -> None:
    # A form feed is not a line end for Python (nor for patch); a missing last newline is marked.
    (tmp_path / "ff.py").write_bytes(b"x = 1  # page\x0cbreak\nfrom dashscope import Runs")
    done = _compat("migrate", "ff.py", cwd=tmp_path)
    assert done.stdout == (
        "--- a/ff.py\n"
        "+++ b/ff.py\n"
        "@@ -1,2 +1,2 @@\n"
        " x = 1  # page\x0cbreak\n"
        "-from dashscope import Runs\n"
        "\\ No newline at end of file\n"
        "+from compat import Runs\n"
        "\\ No newline at end of file\n"
    )


def test_check_exits_1_when_a_file_would_change_and_0_when_none_would(project: Path) -> None:
    done = _compat("migrate", "--check", ".", cwd=project)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines()[-1] == (
        "compat migrate: 1 file would be rewritten, 1 file left unchanged"
    )
    assert (project / "app.py").read_text() == LEGACY
    done = _compat("migrate", "--check", "clean.py", cwd=project)
    assert (done.returncode, done.stdout) == (0, "")


def test_write_edits_in_place_and_a_second_run_changes_nothing(project: Path) -> None:
    done = _compat("migrate", "--write", ".", cwd=project)
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr.splitlines()[-1] == "compat migrate: 1 file rewritten, 1 file left unchanged"
    assert (project / "app.py").read_text() == MIGRATED
    assert (project / "clean.py").read_text() == "from compat import Runs\n"
    again = _compat("migrate", "--check", ".", cwd=project)
    assert again.returncode == 0, again.stderr
    assert _compat("migrate", "--write", ".", cwd=project).returncode == 0
    assert (project / "app.py").read_text() == MIGRATED


def test_directories_are_searched_for_python_files_skipping_tools_and_environments(
    tmp_path: Path,
) -> None:
    for relative in (
        "pkg/a.py",
        "pkg/sub/b.py",
        "pkg/notes.txt",
        ".venv/lib/c.py",
        "env/lib/d.py",
        ".git/e.py",
        "pkg/__pycache__/f.py",
        "node_modules/g.py",
        "pkg.egg-info/h.py",
        "build/lib/i.py",
    ):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("from dashscope import Runs\n")
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / "script").write_text("from dashscope import Runs\n")  # named: always processed
    done = _compat("migrate", "--check", ".", "script", "pkg/a.py", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "pkg/a.py:1: MIG001 from dashscope import Runs -> from compat",
        "pkg/sub/b.py:1: MIG001 from dashscope import Runs -> from compat",
        "script:1: MIG001 from dashscope import Runs -> from compat",
        "compat migrate: 3 files would be rewritten, 0 files left unchanged",
    ]


def test_a_file_that_does_not_parse_is_reported_and_skipped_the_others_are_done(
    project: Path,
) -> None:
    (project / "broken.py").write_text("from dashscope import Runs\n\nx = = 1\n")
    done = _compat("migrate", "--write", ".", cwd=project)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0] == "app.py:4: MIG002 dashscope.Runs -> compat.Runs"
    assert lines[1].startswith("broken.py:3: MIG900 syntax error: expected one of ")
    assert lines[1].endswith("; skipped")
    assert lines[2:] == [
        "compat migrate: 1 file rewritten, 1 file left unchanged, 1 file skipped (errors above)"
    ]
    assert (project / "app.py").read_text() == MIGRATED
    assert (project / "broken.py").read_text() == "from dashscope import Runs\n\nx = = 1\n"


def test_reports_of_what_is_left_do_not_make_check_fail(tmp_path: Path) -> None:
    (tmp_path / "files.py").write_text("from dashscope import Files\n")
    done = _compat("migrate", "--check", "files.py", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stderr.splitlines()[0] == (
        "files.py:1: MIG101 dashscope.Files: compat has no file API; left on dashscope"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["migrate"],
        ["migrate", "--write", "--check", "app.py"],
        ["migrate", "missing.py"],
        [],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2_and_change_nothing(project: Path, args: list[str]) -> None:
    done = _compat(*args, cwd=project)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr
    assert (project / "app.py").read_text() == LEGACY


def test_without_libcst_migrate_names_the_extra_to_install(project: Path) -> None:
    program = (
        "import sys\n"
        "sys.modules['libcst'] = None  # as if not installed: importing it raises ImportError\n"
        "from compat.cli import main\n"
        "sys.exit(main(['migrate', 'app.py']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "python -m compat migrate needs libcst, which is not installed: "
        "pip install 'dashscope-compat[migrate]'\n"
    )


def test_the_cli_and_import_compat_do_not_import_libcst_or_the_sdks(tmp_path: Path) -> None:
    program = (
        "import sys, compat, compat.cli\n"
        "compat.cli.build_parser()\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(loaded & {'libcst', 'openai', 'dashscope'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout == "[]\n"


def test_help_lists_the_subcommand_and_the_rules(tmp_path: Path) -> None:
    top = _compat("--help", cwd=tmp_path)
    assert top.returncode == 0
    assert "migrate" in top.stdout
    migrate = _compat("migrate", "--help", cwd=tmp_path)
    assert migrate.returncode == 0
    assert "  MIG001  `from dashscope import Assistants, ...`" in migrate.stdout
    assert "  MIG900  " in migrate.stdout


def test_the_compat_console_script_is_the_same_cli() -> None:
    # (a venv that once installed the checkout under its old name may list a stale one too)
    (script,) = [
        s
        for s in entry_points(group="console_scripts", name="compat")
        if s.dist is None or s.dist.name == "dashscope-compat"
    ]
    assert script.value == "compat.cli:main"
