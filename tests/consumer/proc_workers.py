"""Worker functions for the multi-process tests: each runs in a real process of its own.

Each worker configures compat from what the test passes (the emulator's environment, the
SQLite file, the lease) and reports through a multiprocessing queue.
"""

from __future__ import annotations

import os
import time
from typing import Any

import compat


def configure(env: dict[str, str], store: str, **settings: Any) -> None:
    os.environ.update(env)
    compat.configure(backend="responses", store=store, **settings)


def race_create(
    env: dict[str, str], store: str, ids: tuple[str, str], barrier: Any, out: Any, release: Any
) -> None:
    """Try one streamed run on the thread; the winner holds it until ``release`` is set."""
    configure(env, store)
    thread_id, assistant_id = ids
    barrier.wait(30)
    stream = compat.Runs.create(thread_id, assistant_id=assistant_id, stream=True)
    event, data = next(stream)
    if event is None:
        out.put(("refused", data["status_code"], data["code"]))
        return
    out.put(("accepted", event, None))
    release.wait(60)
    stream.close()


def race_submit(
    env: dict[str, str], store: str, ids: tuple[str, str, str], barrier: Any, out: Any
) -> None:
    configure(env, store)
    thread_id, run_id, call_id = ids
    barrier.wait(30)
    reply = compat.Runs.submit_tool_outputs(
        run_id, thread_id=thread_id, tool_outputs=[{"tool_call_id": call_id, "output": "A"}]
    )
    out.put(reply.status_code)
    if reply.status_code == 200:
        compat.Runs.wait(run_id, thread_id=thread_id, timeout_seconds=60)


def drive_until_cancelled(env: dict[str, str], store: str, ids: tuple[str, str], out: Any) -> None:
    """Stream a run; report its id at the first delta, then every event until the end."""
    configure(env, store)
    thread_id, assistant_id = ids
    stream = compat.Runs.create(thread_id, assistant_id=assistant_id, stream=True)
    for event, _ in stream:
        if event == "thread.message.delta":
            (run,) = compat.Runs.list(thread_id).data
            out.put(("driving", run.id))
            break
    out.put(("ended", [event for event, _ in stream]))


def many_runs(env: dict[str, str], store: str, assistant_id: str, count: int, out: Any) -> None:
    """``count`` streamed runs, each on a thread of its own; report what each saw."""
    configure(env, store)
    seen = []
    for n in range(count):
        thread = compat.Threads.create(
            messages=[{"role": "user", "content": f"question {os.getpid()}-{n}"}]
        )
        text = "".join(
            d.delta.content.text.value
            for e, d in compat.Runs.create(thread.id, assistant_id=assistant_id, stream=True)
            if e == "thread.message.delta"
        )
        seen.append((thread.id, text))
    out.put(seen)


def forked_child(role: str, thread_id: str, assistant_id: str, out: Any, release: Any) -> None:
    """In a child forked after the parent used compat: drive a run, or read the sibling's."""
    from compat.backends.responses.ownership import worker_id

    out.put(("worker", worker_id()))
    if role == "driver":
        stream = compat.Runs.create(thread_id, assistant_id=assistant_id, stream=True)
        for event, _ in stream:
            if event == "thread.message.delta":
                out.put(("driving", None))
                break
        release.wait(60)
        out.put(("ended", [event for event, _ in stream][-1]))
    else:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            runs = compat.Runs.list(thread_id).data
            if runs and runs[0].status == "in_progress":
                # Read it again: a sibling must never take a live run for an orphan.
                run = compat.Runs.retrieve(runs[0].id, thread_id=thread_id)
                out.put(("seen", run.status))
                return
            time.sleep(0.01)
        out.put(("seen", "timeout"))
