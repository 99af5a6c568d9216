"""``python -m compat.testing --scenario ... -- CMD``: tool paths driven from a shell.

A small legacy program (cli_program.py) runs under the CLI three ways: on the dashscope SDK
directly, and through compat on each backend; all three must print the same, as expected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compat.testing import Emulator, Scenario
from compat.testing._scenario_spec import ScenarioSpecError, parse_file, parse_option

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = Path(__file__).with_name("cli_program.py")

MODES = {
    "dashscope": {},
    "compat-assistants": {"USE_COMPAT": "1", "COMPAT_BACKEND": "assistants"},
    "compat-responses": {"USE_COMPAT": "1", "COMPAT_BACKEND": "responses"},
}


def cli(
    options: list[str], command: list[str], home: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a clean compat environment: no store set, ``home`` as the home."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("COMPAT_", "DASHSCOPE_"))}
    base.update(HOME=str(home), XDG_STATE_HOME=str(home / "state"), **env)
    return subprocess.run(
        [sys.executable, "-m", "compat.testing", *options, "--", *command],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_program(
    options: list[str], questions: list[str], mode: str, home: Path
) -> subprocess.CompletedProcess[str]:
    return cli(options, [sys.executable, str(PROGRAM), *questions], home, **MODES[mode])


@pytest.mark.parametrize("mode", MODES)
def test_scenarios_from_the_command_line_drive_every_tool_path(mode: str, tmp_path: Path) -> None:
    options = [
        "--scenario=text:Hello from the CLI",
        '--scenario=function:get_weather:{"city": "Paris"}',
        "--scenario=code:print(6 * 7)",
        "--scenario=search:weather in Paris",
        "--scenario=failure:server_error:Model overloaded",
    ]
    result = run_program(options, ["Hi", "Weather?", "Compute", "Search", "Fail"], mode, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "text: Hello from the CLI",
        "run: completed",
        'call: get_weather({"city": "Paris"})',
        "run: requires_action",
        "text: The tool returned: 22C",
        "run: completed",
        "text: Let me run some code.",
        "tool: code_interpreter 'print(6 * 7)' -> ''",
        "run: completed",
        "tool: quark_search '{\"query\": \"weather in Paris\"}' -> '[]'",
        "text: Here is what I found.",
        "run: completed",
        "failed: server_error: Model overloaded",
        "run: failed",
    ]
    # COMPAT_STORE defaulted to memory: nothing was written under the (temporary) home.
    assert list(tmp_path.rglob("*")) == []


FILE_SCENARIOS = [
    {
        "code": "print(2 ** 10)",
        "output": "1024\n",
        "explanation": "Computing.",
        "conclusion": "Ok.",
    },
    {"function": "get_weather", "arguments": {"city": "Oslo"}, "then": "Cold in Oslo."},
    {"search": "news", "results": [{"type": "url", "url": "https://n.example"}], "answer": "Calm."},
    {"failure": "rate_limit_exceeded", "message": "Slow down", "after_text": "Part"},
    {"text": "The end.", "chunks": ["The ", "end."], "pace": 0.001},
]
FILE_OUTPUT = [
    "text: Computing.",
    "tool: code_interpreter 'print(2 ** 10)' -> '1024\\n'",
    "text: Ok.",
    "run: completed",
    'call: get_weather({"city": "Oslo"})',
    "run: requires_action",
    "text: Cold in Oslo.",
    "run: completed",
    'tool: quark_search \'{"query": "news"}\' -> \'[{"type": "url", "url": "https://n.example"}]\'',
    "text: Calm.",
    "run: completed",
    "failed: rate_limit_exceeded: Slow down",
    "run: failed",
    "text: The end.",
    "run: completed",
]


@pytest.mark.parametrize(
    ("mode", "layout"), [*((mode, "json-lines") for mode in MODES), ("dashscope", "json-array")]
)
def test_a_scenario_file_queues_its_scenarios_with_all_options(
    mode: str, layout: str, tmp_path: Path
) -> None:
    if layout == "json-lines":
        text = "# one scenario per line\n\n" + "\n".join(json.dumps(s) for s in FILE_SCENARIOS)
    else:
        text = json.dumps(FILE_SCENARIOS, indent=2)
    spec = tmp_path / "scenarios.txt"
    spec.write_text(text, encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    questions = ["a", "b", "c", "d", "e"]
    result = run_program([f"--scenario-file={spec}"], questions, mode, home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == FILE_OUTPUT


def test_scenario_options_and_files_queue_in_command_line_order(tmp_path: Path) -> None:
    spec = tmp_path / "one.json"
    spec.write_text('{"text": "second"}', encoding="utf-8")
    options = ["--scenario", "text:first", "--scenario-file", str(spec), "--scenario", "text:third"]
    result = run_program(options, ["1", "2", "3"], "dashscope", tmp_path)
    texts = [line for line in result.stdout.splitlines() if line.startswith("text:")]
    assert texts == ["text: first", "text: second", "text: third"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--scenario=bogus:x", "expected KIND:VALUE with KIND one of text, function"),
        ("--scenario=failure:server_error", "expected failure:CODE:MESSAGE"),
        ("--scenario=function:f:{not json", "the arguments of 'f' are not valid JSON"),
        ('--scenario=function:f:{"a": 1}x', "expected function:f:ARGUMENTS_JSON[:ANSWER]"),
        ('--scenario={"text": "a", "code": "b"}', "exactly one of the keys"),
        ('--scenario={"text": "a", "colour": "red"}', "unknown key(s) ['colour']"),
        ('--scenario={"failure": "c", "message": "m", "mode": "nope"}', "Failure mode must be"),
        ("--scenario-file=/nonexistent/scenarios.json", "No such file"),
    ],
)
def test_a_bad_scenario_is_a_usage_error_naming_the_problem(
    option: str, message: str, tmp_path: Path
) -> None:
    result = cli([option], [sys.executable, "-c", "print('never run')"], tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr


def test_the_command_gets_compat_store_memory_unless_a_store_is_set(tmp_path: Path) -> None:
    show = [sys.executable, "-c", "import os; print(os.environ['COMPAT_STORE'])"]
    assert cli([], show, tmp_path).stdout == "memory\n"
    chosen = str(tmp_path / "mine.sqlite3")
    assert cli([], show, tmp_path, COMPAT_STORE=chosen).stdout == chosen + "\n"


@pytest.fixture
def no_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPAT_STORE", raising=False)


@pytest.fixture
def own_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    path = str(tmp_path / "own.sqlite3")
    monkeypatch.setenv("COMPAT_STORE", path)
    return path


def test_the_fixture_defaults_compat_store_to_memory(
    no_store: None, compat_emulator: Emulator
) -> None:
    assert os.environ["COMPAT_STORE"] == "memory"


def test_the_fixture_keeps_a_store_the_user_set(own_store: str, compat_emulator: Emulator) -> None:
    assert os.environ["COMPAT_STORE"] == own_store


# --- the scenario vocabulary, in process ---------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("text:Hi: there", Scenario.text("Hi: there")),
        ("function:get_weather", Scenario.function_call("get_weather", {}, then=None)),
        (
            'function:get_weather:{"city": "Paris"}',
            Scenario.function_call("get_weather", {"city": "Paris"}, then=None),
        ),
        (
            'function:get_weather:{"city": "Paris"}:It is 22C: warm.',
            Scenario.function_call("get_weather", {"city": "Paris"}, then="It is 22C: warm."),
        ),
        (
            "code:for i in range(2): print(i)",
            Scenario.code("for i in range(2): print(i)", "", "Let me run some code."),
        ),
        ("search:weather", Scenario.search("weather", [], "Here is what I found.")),
        (
            "failure:server_error:Down: try later",
            Scenario.failure("server_error", "Down: try later"),
        ),
        (
            '{"failure": "InternalError", "message": "m", "mode": "http_error", "status": 500,'
            ' "times": 3}',
            Scenario.failure("InternalError", "m", mode="http_error", status=500, times=3),
        ),
        ('{"text": "a b", "pace": 0.5}', Scenario.text("a b").paced(0.5)),
    ],
)
def test_a_scenario_option_builds_the_scenario_its_constructor_would(
    option: str, expected: Scenario
) -> None:
    assert parse_option(option) == expected


def test_a_scenario_file_is_an_object_an_array_or_json_lines() -> None:
    one = '{"text": "a"}'
    assert parse_file(one, "f") == [Scenario.text("a")]
    assert parse_file(f"[{one}, {one}]", "f") == [Scenario.text("a")] * 2
    assert parse_file(f"# c\n{one}\n\n{one}\n", "f") == [Scenario.text("a")] * 2
    with pytest.raises(ScenarioSpecError, match="f, scenario 2: unknown key"):
        parse_file(f'[{one}, {{"text": "b", "x": 1}}]', "f")
    with pytest.raises(ScenarioSpecError, match="f line 2 is not valid JSON"):
        parse_file(f"{one}\n{{oops\n", "f")
