"""A streaming code tutor written against the legacy Assistant API, with compat's import.

It uses the calls and the access patterns of DashScope's "streaming output" guide: an assistant
with the code interpreter, a thread created with the question, ``Runs.create(..., stream=True)``
and a loop over ``(event, data)`` that prints text deltas and the code interpreter's code and
output as they arrive.

Run it against compat's bundled emulator (no key, no network)::

    python -m compat.testing -- python examples/code_tutor_stream.py

or against DashScope with ``DASHSCOPE_API_KEY`` set. ``COMPAT_BACKEND`` picks the backend.
"""

from __future__ import annotations

import os
import sys
import time
from http import HTTPStatus

from compat import Assistants, Runs, Threads

TYPING_DELAY = float(os.environ.get("CODE_TUTOR_TYPING_DELAY", "0.002"))

QUESTION = """How can I tabulate the sine function in Python?
1. Explain the idea in a few sentences.
2. Write and run a short example with the math module.
3. Show what it prints."""


def type_out(text: str, delay: float = TYPING_DELAY) -> None:
    """Print ``text`` one character at a time, like a tutor typing."""
    for char in text:
        print(char, end="", flush=True)
        if delay:
            time.sleep(delay)


class CodeTutor:
    """Creates the tutor once, then answers questions with a streamed run each."""

    def __init__(self, model: str = "qwen-plus") -> None:
        self.assistant = Assistants.create(
            model=model,
            name="Python tutor",
            instructions=(
                "You are a patient Python tutor. Explain step by step, then run a short "
                "example with the code interpreter and comment on its output."
            ),
            tools=[{"type": "code_interpreter"}],
        )
        if self.assistant.status_code != HTTPStatus.OK:
            sys.exit(f"could not create the tutor: {self.assistant}")
        print("Tutor ready (code interpreter enabled)\n")

    def ask(self, question: str):  # type: ignore[no-untyped-def]
        """Open a thread with the question and start a streamed run on it."""
        thread = Threads.create(messages=[{"role": "user", "content": question}])
        if thread.status_code != HTTPStatus.OK:
            sys.exit(f"could not open a thread: {thread}")
        print("Student asks:", question)
        print("\nThe tutor is thinking...")
        return Runs.create(thread.id, assistant_id=self.assistant.id, stream=True)

    def show(self, stream) -> None:  # type: ignore[no-untyped-def]
        """Print the run as it streams: explanation text, then code and its output."""
        explaining = False
        coding = False
        try:
            for event, data in stream:
                if event is None:  # an HTTP error, returned as the stream's only item
                    print(f"\nrequest failed: {data}")
                    return
                if event == "thread.run.created":
                    print(f"(run {data.status})")
                if event == "thread.message.delta":
                    if not explaining:
                        print("\n\nExplanation:")
                        explaining, coding = True, False
                    type_out(data.delta.content.text.value)
                if event == "thread.run.step.delta":
                    tool_call = data.delta.step_details.tool_calls[0]
                    if getattr(tool_call, "type", "") == "code_interpreter":
                        if not coding:
                            print("\n\nCode demonstration:")
                            coding, explaining = True, False
                        type_out(getattr(tool_call.code_interpreter, "arguments", ""))
                        type_out(getattr(tool_call.code_interpreter, "output", ""))
                if event == "thread.run.failed":
                    print(f"\n\nthe run failed: {data.last_error}")
                if event == "thread.run.completed":
                    print(f"\n\n(run {data.status}, {data.usage.get('total_tokens')} tokens)")
        except KeyboardInterrupt:
            stream.close()
            print("\nLesson interrupted")


if __name__ == "__main__":
    tutor = CodeTutor()
    tutor.show(tutor.ask(QUESTION))
