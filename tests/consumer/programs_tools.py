"""Legacy programs that use tools and meet failures; each takes ``api`` and the emulator.

Each queues the scenario it needs, so running it twice (dashscope, then compat) plays the
same conversation. What is returned is what the program's user observes.
"""

from __future__ import annotations

import json
from typing import Any

from compat.testing import Emulator, FunctionCall, Scenario, Text, Turn

BIG_ADD = {
    "type": "function",
    "function": {
        "name": "big_add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"left": {"type": "integer"}, "right": {"type": "integer"}},
            "required": ["left", "right"],
        },
    },
}
LOOKUP = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


def _setup(api: Any, tools: list[Any], question: str = "What is 1 + 2?") -> tuple[Any, Any]:
    assistant = api.Assistants.create(model="qwen-plus", instructions="Use tools.", tools=tools)
    thread = api.Threads.create(messages=[{"role": "user", "content": question}])
    return assistant, thread


def _observe(stream: Any) -> tuple[list[Any], Any]:
    """Event names and the notable fields of each item; also the last run object seen."""
    seen: list[Any] = []
    last_run = None
    for event, data in stream:
        if event == "thread.message.delta":
            seen.append(("text", data.delta.content.text.value))
        elif event == "thread.run.step.delta":
            call = data.delta.step_details.tool_calls[0]
            if isinstance(call, dict):  # quark_search and other tools dashscope keeps as dicts
                seen.append(("tool delta", call["type"], call[call["type"]]))
            elif getattr(call, "type", "") == "function":
                seen.append(
                    ("function delta", call.id[:5], call.function.name, call.function.arguments)
                )
            else:
                seen.append(
                    ("code delta", call.code_interpreter.arguments, call.code_interpreter.output)
                )
        elif event is None:
            seen.append(("http error", data["status_code"], data["code"], data["message"]))
        elif event == "error":
            seen.append(("error", data.code, data.message, bool(data.request_id)))
        else:
            seen.append(event)
            if event.startswith("thread.run.") and not event.startswith("thread.run.step"):
                last_run = data
    return seen, last_run


def search_then_answer(api: Any, emu: Emulator) -> list[Any]:
    results = [{"title": "Hangzhou weather", "url": "https://example.org/hz"}]
    emu.queue(Scenario.search("Hangzhou weather today", results, "It is sunny in Hangzhou."))
    assistant, thread = _setup(api, [{"type": "search"}], "Weather in Hangzhou?")
    seen, run = _observe(api.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    steps = api.Steps.list(run.id, thread_id=thread.id, order="asc")
    tool_step = steps.data[0]
    call = tool_step.step_details.tool_calls[0]
    seen.append(
        (
            tool_step.type,
            tool_step.status,
            call["type"],
            json.loads(call["quark_search"]["arguments"]),
        )
    )
    seen.append(json.loads(call["quark_search"]["output"]))
    seen.append(api.Messages.list(thread.id).data[0].content[0].text.value)
    return seen


def function_round_trip(api: Any, emu: Emulator, *, stream: bool = True) -> list[Any]:
    emu.queue(Scenario.function_call("big_add", {"left": 1, "right": 2}, then="1 + 2 = 3."))
    assistant, thread = _setup(api, [BIG_ADD])
    seen: list[Any] = []
    if stream:
        part, run = _observe(api.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
        seen += part
    else:
        run = api.Runs.create(thread.id, assistant_id=assistant.id)
        run = api.Runs.wait(run.id, thread_id=thread.id)
    seen.append((run.status, run.required_action.type))
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    seen.append((call.type, call.function.name, json.loads(call.function.arguments)))
    seen.append(api.Runs.retrieve(run.id, thread_id=thread.id).status)
    outputs = [{"tool_call_id": call.id, "output": "3"}]
    if stream:
        part, final = _observe(
            api.Runs.submit_tool_outputs(
                run.id, thread_id=thread.id, tool_outputs=outputs, stream=True
            )
        )
        seen += part
    else:
        queued = api.Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs)
        seen.append(queued.status)
        final = api.Runs.wait(run.id, thread_id=thread.id)
    seen.append((final.id == run.id, final.status))
    seen.append(
        final.usage["total_tokens"]
        == final.usage["prompt_tokens"] + final.usage["completion_tokens"]
    )
    seen.append(final.usage["total_tokens"])
    steps = api.Steps.list(run.id, thread_id=thread.id, order="asc")
    tool_call = steps.data[0].step_details.tool_calls[0]
    seen.append([(s.type, s.status) for s in steps.data])
    seen.append((tool_call.function.name, tool_call.function.output, tool_call.id == call.id))
    seen.append(
        [(m.role, m.content[0].text.value) for m in api.Messages.list(thread.id, order="asc").data]
    )
    return seen


def function_round_trip_not_streamed(api: Any, emu: Emulator) -> list[Any]:
    return function_round_trip(api, emu, stream=False)


def parallel_calls_and_a_second_round(api: Any, emu: Emulator) -> list[Any]:
    emu.queue(
        Scenario(
            [
                Turn(
                    [FunctionCall("lookup", '{"key": "a"}'), FunctionCall("lookup", '{"key": "b"}')]
                ),
                Turn([FunctionCall("big_add", '{"left": 10, "right": 20}')]),
                Turn([Text("The total is 30.")]),
            ]
        )
    )
    assistant, thread = _setup(api, [LOOKUP, BIG_ADD], "Add a and b.")
    seen, run = _observe(api.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    calls = run.required_action.submit_tool_outputs.tool_calls
    seen.append([(c.function.name, c.function.arguments) for c in calls])
    outputs = [
        {"tool_call_id": c.id, "output": v} for c, v in zip(calls, ["10", "20"], strict=True)
    ]
    part, run = _observe(
        api.Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs, stream=True)
    )
    seen += part
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    seen.append((run.status, call.function.name))
    part, run = _observe(
        api.Runs.submit_tool_outputs(
            run.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": call.id, "output": "30"}],
            stream=True,
        )
    )
    seen += part
    seen.append((run.status, run.usage["total_tokens"]))
    steps = api.Steps.list(run.id, thread_id=thread.id, order="asc").data
    seen.append(
        [
            (
                s.type,
                [tc.function.output for tc in s.step_details.tool_calls]
                if s.type == "tool_calls"
                else None,
            )
            for s in steps
        ]
    )
    return seen


def tool_output_mistakes(api: Any, emu: Emulator) -> list[Any]:
    emu.queue(
        Scenario(
            [
                Turn(
                    [FunctionCall("lookup", '{"key": "a"}'), FunctionCall("lookup", '{"key": "b"}')]
                ),
                Turn([Text("Done.")]),
            ]
        )
    )
    assistant, thread = _setup(api, [LOOKUP], "Look up a and b.")
    run = api.Runs.create(thread.id, assistant_id=assistant.id)
    run = api.Runs.wait(run.id, thread_id=thread.id)
    first, second = run.required_action.submit_tool_outputs.tool_calls
    seen: list[Any] = [run.status]

    def attempt(outputs: list[Any]) -> Any:
        reply = api.Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs)
        message = reply.message.replace(first.id, "<first>").replace(second.id, "<second>")
        return (reply.status_code, reply.code, message)

    seen.append(attempt([{"tool_call_id": first.id, "output": "A"}]))
    seen.append(
        attempt(
            [
                {"tool_call_id": "call_unknown", "output": "A"},
                {"tool_call_id": second.id, "output": "B"},
            ]
        )
    )
    seen.append(attempt([{"output": "A"}]))
    seen.append(api.Runs.retrieve(run.id, thread_id=thread.id).status)  # still waiting, unharmed
    done = api.Runs.submit_tool_outputs(
        run.id,
        thread_id=thread.id,
        tool_outputs=[
            {"tool_call_id": first.id, "output": "A"},
            {"tool_call_id": second.id, "output": "B"},
        ],
    )
    seen.append(done.status_code)
    seen.append(api.Runs.wait(run.id, thread_id=thread.id).status)
    again = api.Runs.submit_tool_outputs(
        run.id, thread_id=thread.id, tool_outputs=[{"output": "x"}]
    )
    seen.append((again.status_code, again.code, again.message))
    return seen


def failure_after_start(api: Any, emu: Emulator, scenario: Scenario) -> list[Any]:
    """The stream, then the stored run's status, the thread's messages, and what else is stored
    of the run: its error code (the message of a Responses-only failure is compat's own), its
    usage, whether it started and failed, its steps' ends."""
    emu.queue(scenario)
    assistant, thread = _setup(api, [], "Tell me a story.")
    seen, _ = _observe(api.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    runs = api.Runs.list(thread.id).data
    seen.append(runs[0].status)
    messages = api.Messages.list(thread.id, order="asc").data
    seen.append(
        [
            (m.role, getattr(m, "status", None), m.content[0].text.value if m.content else "")
            for m in messages
        ]
    )
    run = api.Runs.retrieve(runs[0].id, thread_id=thread.id)
    steps = api.Steps.list(run.id, thread_id=thread.id, order="asc").data
    seen.append(
        (
            _error_code(run.last_error),
            run.usage,
            (run.started_at is not None, run.failed_at is not None),
            [(s.type, s.status, _error_code(s.last_error), s.failed_at is not None) for s in steps],
        )
    )
    return seen


def _error_code(error: Any) -> Any:
    """A ``last_error``'s code: a dict on a run, an object on a step (in both SDKs)."""
    if error is None:
        return None
    return error["code"] if isinstance(error, dict) else error.code


def active_run_is_refused(api: Any, emu: Emulator) -> list[Any]:
    # A minute of text: the run is active through the next calls however slow the machine;
    # the program cancels it once it has seen the refusals.
    emu.queue(Scenario.text("slow " * 3000).paced(0.02))
    assistant, thread = _setup(api, [], "Hi")
    run = api.Runs.create(thread.id, assistant_id=assistant.id)
    second = api.Runs.create(thread.id, assistant_id=assistant.id)
    message = second.message.replace(thread.id, "<thread>").replace(run.id, "<run>")
    seen: list[Any] = [(second.status_code, second.code, message)]
    streamed = list(api.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    seen.append([(e, d["status_code"], d["code"]) for e, d in streamed])
    seen.append(api.Runs.cancel(run.id, thread_id=thread.id).status)
    seen.append(api.Runs.wait(run.id, thread_id=thread.id).status)
    again = api.Runs.create(thread.id, assistant_id=assistant.id)
    seen.append((again.status_code, api.Runs.wait(again.id, thread_id=thread.id).status))
    return seen
