"""A small legacy Assistant-API program, for the CLI tests: ``python cli_program.py Q1 [Q2 ...]``.

It imports from ``dashscope`` or, with ``USE_COMPAT=1``, from ``compat`` (whose backend then
comes from ``COMPAT_BACKEND``), asks each question in one thread, streams each run, answers
every function call with ``22C``, and prints what it saw, one line per fact.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

warnings.simplefilter("ignore", DeprecationWarning)  # dashscope 2.x warns on every call

if os.environ.get("USE_COMPAT") == "1":
    from compat import Assistants, Messages, Runs, Threads
else:
    from dashscope import Assistants, Messages, Runs, Threads

WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "description": "The weather in a city.", "parameters": {}},
}


def show(events: Any, thread_id: str) -> None:
    pending: list[dict[str, str]] = []
    run_id = ""
    for event, data in events:
        if event is None:
            print(f"error: {data['status_code']} {data['code']}: {data['message']}")
        elif event == "thread.message.completed":
            print("text:", data.content[0].text.value)
        elif event == "thread.run.step.completed" and data.type == "tool_calls":
            for call in data.step_details.tool_calls:
                kind = call["type"]
                if kind != "function":
                    body = call[kind]
                    print(f"tool: {kind} {body['arguments']!r} -> {body['output']!r}")
        elif event == "thread.run.requires_action":
            run_id = data.id
            for call in data.required_action.submit_tool_outputs.tool_calls:
                print(f"call: {call.function.name}({call.function.arguments})")
                pending.append({"tool_call_id": call.id, "output": "22C"})
        elif event == "thread.run.failed":
            print(f"failed: {data.last_error['code']}: {data.last_error['message']}")
        if event in ("thread.run.completed", "thread.run.failed", "thread.run.requires_action"):
            print("run:", data.status)
    if pending:  # after the stream ended, as the run is stored waiting only then (see tests)
        more = Runs.submit_tool_outputs(
            run_id, thread_id=thread_id, tool_outputs=pending, stream=True
        )
        show(more, thread_id)


def main(questions: list[str]) -> None:
    assistant = Assistants.create(
        model="qwen-plus",
        instructions="Be brief.",
        tools=[{"type": "code_interpreter"}, {"type": "quark_search"}, WEATHER],
    )
    thread = Threads.create()
    for question in questions:
        Messages.create(thread.id, content=question)
        show(Runs.create(thread.id, assistant_id=assistant.id, stream=True), thread.id)


if __name__ == "__main__":
    main(sys.argv[1:])
