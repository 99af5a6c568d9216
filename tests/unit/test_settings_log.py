"""The ``compat`` logger tree: names, redaction, once-per-type lines, COMPAT_LOG."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from compat import _log

ROOT = Path(__file__).resolve().parents[2]


def test_logger_names_form_one_tree() -> None:
    assert _log.logger().name == "compat"
    assert _log.logger("compat.backends.responses.upstream").name == (
        "compat.backends.responses.upstream"
    )
    assert _log.logger("store").name == "compat.store"
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("compat").handlers)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Authorization: Bearer sk-0123456789abcdef", "Authorization: Bearer sk-…cdef"),
        ('{"api_key": "sk-0123456789abcdef"}', '{"api_key": "sk-…cdef"}'),
        ("https://h/x?api_key=secret-value&x=1", "https://h/x?api_key=***&x=1"),
        (
            "Incorrect API key provided: sk-abcd1234efgh5678.",
            "Incorrect API key provided: sk-…5678.",
        ),
        ("bearer short", "bearer ***"),
        ("no secret here: model=qwen-plus", "no secret here: model=qwen-plus"),
    ],
)
def test_redact_masks_what_looks_like_a_key(text: str, shown: str) -> None:
    assert _log.redact(text) == shown


def test_mask_key_shows_at_most_the_last_four_characters() -> None:
    assert _log.mask_key(None) is None
    assert _log.mask_key("sk-0123456789abcdef") == "sk-…cdef"
    assert _log.mask_key("0123456789abcdefXYZ") == "…fXYZ"
    assert _log.mask_key("sk-short") == "***"


def test_once_logs_each_type_one_time(caplog: pytest.LogCaptureFixture) -> None:
    log = _log.logger("tests.once")
    with caplog.at_level(logging.INFO, logger="compat"):
        for _ in range(3):
            _log.once(log, "event", "response.mystery", "ignoring unknown event type %s", "x")
        _log.once(log, "item", "response.mystery", "ignoring unknown item type %s", "y")
    assert [r.getMessage() for r in caplog.records] == [
        "ignoring unknown event type x",
        "ignoring unknown item type y",
    ]


LOG_PROGRAM = """
import logging, sys
sys.path.insert(0, sys.argv[1])
from compat._log import logger
log = logger("compat.demo")
log.info("run %s started", "run_1")
log.debug("a debug line")
print(len(logging.getLogger().handlers), logging.getLogger().level)
"""


def _run(env_value: str | None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if env_value is not None:
        env["COMPAT_LOG"] = env_value
    return subprocess.run(
        [sys.executable, "-c", LOG_PROGRAM, str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_compat_log_attaches_a_stderr_handler_and_leaves_the_root_alone() -> None:
    info = _run("info")
    assert info.returncode == 0, info.stderr
    assert info.stdout.split() == ["0", str(logging.WARNING)]  # root: untouched
    lines = info.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(" INFO compat.demo: run run_1 started")
    debug = _run("DEBUG")
    assert [line.split(" ", 2)[2] for line in debug.stderr.splitlines()] == [
        "INFO compat.demo: run run_1 started",
        "DEBUG compat.demo: a debug line",
    ]


def test_without_compat_log_nothing_is_printed() -> None:
    for value in (None, "", "off"):
        out = _run(value)
        assert (out.returncode, out.stderr) == (0, "")


def test_an_unknown_compat_log_value_names_the_valid_ones() -> None:
    out = _run("verbose")
    assert out.returncode == 1
    assert out.stderr.splitlines()[-1] == (
        "compat.errors.ConfigurationError: unknown log level 'verbose' (from COMPAT_LOG); "
        "valid choices: debug, info (or unset for no logging)"
    )
