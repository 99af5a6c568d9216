"""The import command's pieces that need no server: ids files, the summary, the progress bar."""

from __future__ import annotations

import io
from pathlib import Path

from compat.cli.import_ import _Progress, read_ids
from compat.cli.importer import IMPORTED_MID_RUN, Tally, run_record


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_ids_file_skips_blanks_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("# kept by the app\nthread_a\n\n  thread_b  # second\n", "utf-8")
    assert read_ids(str(path)) == ["thread_a", "thread_b"]


def test_summary_line() -> None:
    tally = Tally()
    tally.count("thread", True)
    tally.count("message", True)
    tally.count("message", True)
    tally.count("assistant", False)
    tally.failed["thread_x"] = "gone"
    assert tally.summary() == "import: added 1 thread, 2 messages; 1 already present; 1 failed"
    assert Tally().summary(dry_run=True) == (
        "import: would add nothing; 0 already present; 0 failed"
    )


def test_progress_bar_only_on_a_terminal() -> None:
    plain = io.StringIO()
    progress = _Progress(2, plain)
    progress.step()
    progress.step()
    assert plain.getvalue() == ""
    tty = Terminal()
    progress = _Progress(2, tty)
    progress.step()
    progress.step()
    assert tty.getvalue() == (
        "\rimport [###############...............] 1/2"
        "\rimport [##############################] 2/2\n"
    )


def test_active_runs_become_expired() -> None:
    for status in ("queued", "in_progress", "requires_action", "cancelling"):
        stored = run_record({"id": "r", "status": status, "required_action": {"x": 1}})
        assert stored == {
            "id": "r",
            "status": "expired",
            "required_action": None,
            "last_error": IMPORTED_MID_RUN,
        }
    for status in ("completed", "failed", "cancelled", "expired"):
        assert run_record({"id": "r", "status": status}) == {"id": "r", "status": status}
