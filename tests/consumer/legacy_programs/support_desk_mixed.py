"""A support desk answering in the background, written against dashscope's Assistant API.

Legacy patterns: names imported from ``dashscope`` next to APIs that stay there
(``Generation``), errors from ``dashscope.common.error``, type annotations and ``isinstance``
checks with ``dashscope.threads.thread_types``, non-streaming runs waited on.
"""

from http import HTTPStatus

from dashscope import Assistants, Generation, Messages, Runs, Steps, Threads
from dashscope.common.error import InputRequired, UnsupportedModel
from dashscope.threads.thread_types import Run, ThreadMessage, ThreadMessageList

TICKETS = [
    "My invoice shows the wrong address.",
    "",
    "How do I reset my password?",
]


def summarize_offline(text):
    """Not used by the desk itself: a one-off summary through plain chat."""
    return Generation.call(model="qwen-turbo", prompt=f"Summarize: {text}")


def last_reply(messages: ThreadMessageList) -> str:
    replies = [m for m in messages.data if isinstance(m, ThreadMessage) and m.role == "assistant"]
    return replies[0].content[0].text.value if replies else "(no reply)"


def answer(thread_id: str, assistant_id: str) -> Run:
    run = Runs.create(thread_id, assistant_id=assistant_id)
    if run.status_code != HTTPStatus.OK:
        raise RuntimeError(f"run failed to start: {run.code}")
    return Runs.wait(run.id, thread_id=thread_id)


def main():
    desk = Assistants.create(
        model="qwen-plus",
        name="Support desk",
        instructions="Answer customer tickets politely and briefly.",
    )
    thread = Threads.create(metadata={"channel": "email"})
    for number, ticket in enumerate(TICKETS, start=1):
        try:
            Messages.create(thread.id, content=ticket)
        except (InputRequired, UnsupportedModel) as exc:
            print(f"ticket {number}: rejected ({type(exc).__name__}: {exc})")
            continue
        run = answer(thread.id, desk.id)
        usage = run.usage
        print(f"ticket {number}: {run.status}, is a Run: {isinstance(run, Run)}")
        print(f"  tokens: {usage.get('prompt_tokens')} in, {usage.get('completion_tokens')} out")
        print(f"  reply: {last_reply(Messages.list(thread.id, limit=5, order='desc'))}")
        steps = Steps.list(run.id, thread_id=thread.id)
        print(f"  steps: {[step.step_details.type for step in steps.data]}")
    history = Messages.list(thread.id, order="asc")
    print(f"thread holds {len(history.data)} messages")


if __name__ == "__main__":
    main()
