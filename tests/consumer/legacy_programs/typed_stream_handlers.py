"""Typed stream handlers written against dashscope's Assistant API, with an aliased module.

Legacy patterns: ``import dashscope as ds``, the type modules imported as modules
(``thread_types``, ``assistant_types``), ``error`` imported from ``dashscope.common``,
``isinstance`` dispatch on stream data, ``create_thread_and_run`` streaming, a file upload helper
that has no compat equivalent.
"""

import dashscope as ds
from dashscope.assistants import assistant_types
from dashscope.common import error
from dashscope.threads import thread_types


def upload_notes(path):
    """Not called here: assistant files stay on dashscope."""
    return ds.Files.upload(file_path=path, purpose="assistants")


def make_assistant(model: str) -> assistant_types.Assistant:
    return ds.Assistants.create(model=model, name="Greeter", instructions="Greet people.")


def handle(event: str, data) -> str | None:
    if isinstance(data, thread_types.ThreadMessageDelta):
        return data.delta.content.text.value
    if isinstance(data, thread_types.Run):
        return f"[{event.rsplit('.', 1)[-1]}: {data.status}]"
    if isinstance(data, thread_types.RunStep):
        return f"[step {data.type} {data.status}]"
    return None


def main():
    try:
        make_assistant("")
    except error.ModelRequired as exc:
        print(f"no model given: {exc}")
    assistant = make_assistant("qwen-plus")
    print(f"assistant {assistant.name} ({assistant.model})")
    stream = ds.Runs.create_thread_and_run(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Hello there!"}]},
        stream=True,
    )
    pieces = []
    for event, data in stream:
        piece = handle(event, data)
        if piece is not None:
            pieces.append(piece)
    print("".join(pieces))


if __name__ == "__main__":
    main()
