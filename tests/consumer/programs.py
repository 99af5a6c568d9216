"""Legacy Assistant-API programs, written the way users wrote them against dashscope.

Each takes ``api`` (the dashscope module or compat) and returns what its user would observe,
as plain values: the program reads objects only the ways legacy code reads them.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

QUESTION = "Show me how to print the squares of 1 to 3 in Python."
TUTOR_INSTRUCTIONS = "You are a patient code tutor. Explain step by step."


def _ok(obj: Any) -> bool:
    return bool(obj.status_code == HTTPStatus.OK)


def code_tutor(api: Any) -> list[Any]:
    """The seed program's pattern: code interpreter assistant, streamed run, deltas printed.

    Text deltas are observed one by one. Code-interpreter deltas are observed as what the seed
    program prints from them (arguments, then output), joined: how the code is split into
    deltas is not observable on screen, and DashScope's Responses API sends it in one piece.
    """
    assistant = api.Assistants.create(
        model="qwen-plus",
        name="Python Tutoring Assistant",
        instructions=TUTOR_INSTRUCTIONS,
        tools=[{"type": "code_interpreter"}],
    )
    thread = api.Threads.create(messages=[{"role": "user", "content": QUESTION}])
    stream = api.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    seen: list[Any] = []
    printed: list[str] = []
    for event, data in stream:
        if event == "thread.run.created":
            seen.append(("status", data.status))
        if event == "thread.message.delta":
            seen.append(("text", data.delta.content.text.value))
        elif event == "thread.run.step.delta":
            tool_call = data.delta.step_details.tool_calls[0]
            if getattr(tool_call, "type", "") == "code_interpreter":
                printed.append(getattr(tool_call.code_interpreter, "arguments", ""))
                printed.append(getattr(tool_call.code_interpreter, "output", ""))
        else:
            if printed:
                seen.append(("code printout", "".join(printed)))
                printed = []
            seen.append(event)
    return seen


def simple_wait_and_list(api: Any) -> list[Any]:
    """dashscope's examples/legacy_1x/assistant_api_simple.py flow."""
    assistant = api.Assistants.create(
        model="qwen-plus",
        name="smart helper",
        description="A tool helper.",
        instructions="You are a helpful assistant.",
    )
    thread = api.Threads.create(messages=[{"role": "user", "content": "How do I stew beef?"}])
    run = api.Runs.create(thread.id, assistant_id=assistant.id)
    seen: list[Any] = [_ok(assistant), _ok(thread), _ok(run), run.status]
    run_status = api.Runs.wait(run.id, thread_id=thread.id)
    seen.append(run_status.status)
    usage = run_status.usage
    seen.append(
        (usage.get("total_tokens"), usage.get("prompt_tokens"), usage.get("completion_tokens"))
    )
    msgs = api.Messages.list(thread.id)
    for message in msgs.data:
        seen.append((message["role"], message.content[0].text.value, message.run_id == run.id))
    return seen


def multi_turn(api: Any) -> list[Any]:
    """Three runs on one thread; each reply depends on the history the backend carried."""
    assistant = api.Assistants.create(model="qwen-plus", instructions="Answer briefly.")
    thread = api.Threads.create(messages=[{"role": "user", "content": "My name is Ada."}])
    seen: list[Any] = []
    for question in (None, "What is my name?", "And what did I ask first?"):
        if question is not None:
            message = api.Messages.create(thread.id, content=question)
            seen.append((message.role, message.content[0].text.value))
        stream = api.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
        text = "".join(
            data.delta.content.text.value
            for event, data in stream
            if event == "thread.message.delta"
        )
        seen.append(text)
    msgs = api.Messages.list(thread.id, order="asc")
    seen.append([(m.role, m.content[0].text.value) for m in msgs.data])
    runs = api.Runs.list(thread.id)
    seen.append([r.status for r in runs.data])
    return seen


def create_thread_and_run(api: Any) -> list[Any]:
    """Runs.create_thread_and_run(stream=True): thread.created first, then the run."""
    assistant = api.Assistants.create(model="qwen-plus", instructions="Be kind.")
    stream = api.Runs.create_thread_and_run(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Say hello."}]},
        stream=True,
    )
    seen: list[Any] = []
    thread_id = run_id = None
    for event, data in stream:
        seen.append(event)
        if event == "thread.created":
            thread_id = data.id
        if event == "thread.run.completed":
            run_id = data.id
            seen.append(data.thread_id == thread_id)
            seen.append(data.usage.get("total_tokens"))
    steps = api.Steps.list(run_id, thread_id=thread_id)
    seen.append([(s.type, s.status) for s in steps.data])
    message_id = steps.data[0].step_details.message_creation.message_id
    message = api.Messages.retrieve(message_id, thread_id=thread_id)
    seen.append((message.role, message.content[0].text.value))
    return seen


def crud_and_errors(api: Any) -> list[Any]:
    """Object CRUD, pagination and the error objects legacy code checks for."""
    seen: list[Any] = []
    assistant = api.Assistants.create(
        model="qwen-plus", name="a", metadata={"k": "v"}, temperature=0.5, top_p=0.9
    )
    seen.append((assistant.name, assistant.model, assistant.metadata, assistant.tools))
    seen.append((assistant.temperature, assistant.top_p, assistant.file_ids))
    updated = api.Assistants.update(assistant.id, name="b", instructions="x")
    seen.append((updated.name, updated.instructions, updated.metadata, updated.model))
    again = api.Assistants.retrieve(assistant.id)
    seen.append((again.name, again.id == assistant.id))
    thread = api.Threads.create(metadata={"topic": "t"})
    seen.append(thread.metadata)
    seen.append(api.Threads.update(thread.id, metadata={"topic": "u"}).metadata)
    ids = [api.Messages.create(thread.id, content=f"m{i}").id for i in range(5)]
    page = api.Messages.list(thread.id, limit=2)
    seen.append(([m.content[0].text.value for m in page.data], page.has_more))
    seen.append((page.first_id == ids[4], page.last_id == ids[3]))
    page = api.Messages.list(thread.id, limit=2, after=page.last_id)
    seen.append(([m.content[0].text.value for m in page.data], page.has_more))
    page = api.Messages.list(thread.id, order="asc", before=ids[3])
    seen.append(([m.content[0].text.value for m in page.data], page.has_more))
    message = api.Messages.update(ids[0], thread_id=thread.id, metadata={"seen": "yes"})
    seen.append(message.metadata)
    for missing in (
        api.Threads.retrieve("thread_doesnotexist"),
        api.Assistants.retrieve("asst_doesnotexist"),
        api.Messages.retrieve("msg_doesnotexist", thread_id=thread.id),
        api.Runs.retrieve("run_doesnotexist", thread_id=thread.id),
        api.Messages.list("thread_doesnotexist"),
    ):
        seen.append((missing.status_code, missing.code, missing.message))
    deleted = api.Threads.delete(thread.id)
    seen.append((deleted.deleted, deleted.id == thread.id))
    gone = api.Messages.list(thread.id)
    seen.append((gone.status_code, gone.code))
    deleted = api.Assistants.delete(assistant.id)
    seen.append((deleted.deleted, api.Assistants.retrieve(assistant.id).status_code))
    return seen
