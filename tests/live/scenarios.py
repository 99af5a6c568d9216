"""One live scenario through compat, on the backend ``COMPAT_BACKEND`` names: ``scenarios.py NAME``.

Prints one ``RESULT {...}`` line: the normalised outcome (``compat._shadow_compare.normalise``:
event names with deltas merged, texts, status, tool calls, steps) of each run, so that
``run_live.py`` can show the two backends side by side. Names: ``function``, ``search``,
``two_runs``, ``instructions``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from compat import Assistants, Messages, Runs, Threads
from compat._shadow_compare import normalise

MODEL = "qwen-plus"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def ok(obj: Any) -> Any:
    if getattr(obj, "status_code", 200) != 200:
        sys.exit(f"call failed: {obj}")
    return obj


def stream(items: Any) -> tuple[dict[str, Any], Any]:
    """The normalised run and its last run object."""
    seen = list(items)
    runs = [d for e, d in seen if e and e.startswith("thread.run.") and ".step." not in e]
    return normalise(seen), (runs[-1] if runs else None)


def function() -> list[dict[str, Any]]:
    assistant = ok(
        Assistants.create(model=MODEL, instructions="Use get_weather for weather.", tools=[WEATHER])
    )
    thread = ok(Threads.create(messages=[{"role": "user", "content": "Weather in Paris now?"}]))
    first, run = stream(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    out = [first]
    if run is not None and run.status == "requires_action":
        calls = run.required_action.submit_tool_outputs.tool_calls
        outputs = [{"tool_call_id": c.id, "output": "18 C, light rain"} for c in calls]
        second, _ = stream(
            Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs, stream=True)
        )
        out.append(second)
    return out


def search() -> list[dict[str, Any]]:
    assistant = ok(Assistants.create(model=MODEL, tools=[{"type": "search"}]))
    thread = ok(
        Threads.create(
            messages=[{"role": "user", "content": "Search: who won the 2022 World Cup?"}]
        )
    )
    return [stream(Runs.create(thread.id, assistant_id=assistant.id, stream=True))[0]]


def two_runs() -> list[dict[str, Any]]:
    assistant = ok(Assistants.create(model=MODEL, instructions="Answer in one short sentence."))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "My name is Ada."}]))
    first, _ = stream(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    ok(Messages.create(thread.id, content="What is my name?"))
    second, _ = stream(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    return [first, second]


def instructions() -> list[dict[str, Any]]:
    assistant = ok(
        Assistants.create(model=MODEL, instructions="Always answer with the single word PINEAPPLE.")
    )
    thread = ok(Threads.create(messages=[{"role": "user", "content": "What is 2+2?"}]))
    return [stream(Runs.create(thread.id, assistant_id=assistant.id, stream=True))[0]]


SCENARIOS = {"function": function, "search": search, "two_runs": two_runs}
SCENARIOS["instructions"] = instructions

if __name__ == "__main__":
    print("RESULT " + json.dumps(SCENARIOS[sys.argv[1]](), ensure_ascii=False))
