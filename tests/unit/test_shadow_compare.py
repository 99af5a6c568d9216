"""The shadow comparison's normalisation and the shadow-report summary (pure, no server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compat._shadow_compare import compare, normalise, outcome
from compat.cli import main
from compat.types import convert_stream_item


def delta(text: str) -> tuple[str | None, object]:
    return convert_stream_item(
        "thread.message.delta",
        {
            "id": "msg_1",
            "object": "thread.message.delta",
            "delta": {"content": [{"type": "text", "text": {"value": text, "annotations": []}}]},
        },
    )


def run_event(status: str, **extra: object) -> tuple[str, dict[str, object]]:
    return f"thread.run.{status}", {
        "id": "run_1",
        "object": "thread.run",
        "status": status,
        **extra,
    }


def message_done(text: str) -> tuple[str, dict[str, object]]:
    content = [{"type": "text", "text": {"value": text, "annotations": []}}]
    return "thread.message.completed", {"id": "m", "role": "assistant", "content": content}


def test_deltas_are_merged_and_ids_ignored() -> None:
    one = [
        run_event("created"),
        delta("Hel"),
        delta("lo"),
        message_done("Hello"),
        run_event("completed"),
    ]
    two = [
        run_event("created"),
        delta("H"),
        delta("e"),
        delta("llo"),
        message_done("Hello"),
        run_event("completed"),
    ]
    assert normalise(one) == normalise(two)
    assert normalise(one)["events"] == [
        "thread.run.created",
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.completed",
    ]
    assert compare(normalise(one), normalise(two)) == []


def test_tool_calls_compare_arguments_as_json() -> None:
    def asking(arguments: str) -> list[tuple[str | None, object]]:
        call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}
        action = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [call]}}
        return [run_event("requires_action", required_action=action)]

    assert compare(normalise(asking('{"a": 1}')), normalise(asking('{"a":1}'))) == []
    (difference,) = compare(normalise(asking('{"a": 1}')), normalise(asking('{"a": 2}')))
    assert difference["kind"] == "tool_calls"


def test_an_error_item_and_a_status_differ() -> None:
    failed = normalise([(None, {"code": "Refused", "message": "no"})])
    done = normalise([run_event("completed")])
    kinds = [d["kind"] for d in compare(done, failed)]
    assert kinds == ["events", "status", "error"]


def test_a_non_streamed_outcome_skips_events() -> None:
    run = {"status": "completed", "status_code": 200}
    message = {"content": [{"type": "text", "text": {"value": "Hi", "annotations": []}}]}
    streamed = normalise([message_done("Hi"), run_event("completed")])
    assert compare(outcome(run, [message]), streamed) == []


def test_shadow_report_counts_and_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.jsonl"
    entries = [
        {"kind": "run", "verdict": "identical", "dropped": 0},
        {"kind": "run", "verdict": "identical", "dropped": 1},
    ]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries) + "not json\n", "utf-8")
    assert main(["shadow-report", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "runs compared: 2",
        "identical:     2",
        "different:     0",
        "shadow errors: 0",
        "dropped:       1",
        "unreadable lines: 1",
    ]
    assert main(["shadow-report", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
