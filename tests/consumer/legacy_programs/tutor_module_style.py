"""A streaming Python tutor written against dashscope's Assistant API, module style.

Legacy patterns: ``import dashscope`` and ``dashscope.X`` everywhere, the key set on the module,
``except dashscope.common.error.InputRequired`` around user input.
"""

import os
import sys
from http import HTTPStatus

import dashscope

dashscope.api_key = os.environ.get("DASHSCOPE_API_KEY")

QUESTIONS = ["", "How do I print a table of the sine function in Python?"]


def create_tutor():
    tutor = dashscope.Assistants.create(
        model="qwen-plus",
        name="Python tutor",
        instructions="You are a patient Python tutor. Run a short example for every answer.",
        tools=[{"type": "code_interpreter"}],
    )
    if tutor.status_code != HTTPStatus.OK:
        sys.exit(f"could not create the tutor: {tutor.code} {tutor.message}")
    return tutor


def add_questions(thread_id):
    added = 0
    for question in QUESTIONS:
        try:
            dashscope.Messages.create(thread_id, content=question)
        except dashscope.common.error.InputRequired as exc:
            print(f"skipped a question: {exc}")
            continue
        added += 1
    return added


def stream_answer(thread_id, assistant_id):
    stream = dashscope.Runs.create(thread_id, assistant_id=assistant_id, stream=True)
    text, code, output = [], [], []
    run_id = None
    for event, data in stream:
        if event is None:
            sys.exit(f"request failed: {data}")
        if event == "thread.run.created":
            run_id = data.id
            print(f"run {data.status}")
        elif event == "thread.message.delta":
            text.append(data.delta.content.text.value)
        elif event == "thread.run.step.delta":
            call = data.delta.step_details.tool_calls[0]
            if call.type == "code_interpreter":
                code.append(call.code_interpreter.arguments or "")
                output.append(call.code_interpreter.output or "")
        elif event == "thread.run.completed":
            print(f"run {data.status}, {data.usage.get('total_tokens')} tokens")
    print("".join(text))
    print("--- code ---")
    print("".join(code), end="")
    print("--- output ---")
    print("".join(output), end="")
    return run_id


def main():
    tutor = create_tutor()
    thread = dashscope.Threads.create()
    print(f"questions added: {add_questions(thread.id)}")
    run_id = stream_answer(thread.id, tutor.id)
    steps = dashscope.Steps.list(run_id, thread_id=thread.id)
    print("steps:", [(step.type, step.status) for step in steps.data])
    messages = dashscope.Messages.list(thread.id, order="asc")
    print("roles:", [message.role for message in messages.data])


if __name__ == "__main__":
    main()
