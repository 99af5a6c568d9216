"""The run rules across real processes sharing one store (an SQLite file, and a PostgreSQL
database when a server is given: tests/pg.py): racing creates and submits,
cancel from another process, many processes at once, fork after first use, kill -9 of a driver,
and a short-lived process that leaves a non-streamed run behind.

Processes are started with ``spawn`` (fresh interpreters, as separate programs are) or as
``python -c`` scripts; the fork test forks inside a fresh interpreter, as a pre-fork server does.
Waits are on conditions with bounded timeouts, never on sleeps.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import compat
from compat.testing import Emulator, Scenario, Text
from tests.pg import fresh_schema_uri, pg_server_uri

from . import proc_workers as w
from .held import stalled, wait_for

pytestmark = pytest.mark.skipif(
    os.environ.get("COMPAT_BACKEND", "responses") != "responses",
    reason="responses backend only",
)

ROOT = Path(__file__).resolve().parents[2]
SPAWN = multiprocessing.get_context("spawn")
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared(
    request: pytest.FixtureRequest, compat_emulator: Emulator, tmp_path: Path
) -> Iterator[tuple[Emulator, str]]:
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            store = str(tmp_path / "shared.sqlite3")
        else:
            schema = f"p_{uuid.uuid4().hex[:12]}"
            store = stack.enter_context(fresh_schema_uri(pg_server_uri(), schema))
        compat.configure(backend="responses", store=store)
        yield compat_emulator, store
        compat.configure(reset=True)


def start(target: Any, *args: Any) -> Any:
    process = SPAWN.Process(target=target, args=args)
    process.start()
    return process


def join_all(processes: list[Any]) -> None:
    for process in processes:
        process.join(120)
        assert process.exitcode == 0, f"{process} exited with {process.exitcode}"


def test_processes_racing_to_create_on_one_thread_exactly_one_wins(
    shared: tuple[Emulator, str],
) -> None:
    emu, store = shared
    emu.queue(stalled())
    assistant = compat.Assistants.create(model="qwen-plus")
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    barrier, out, release = SPAWN.Barrier(6), SPAWN.Queue(), SPAWN.Event()
    ids = (thread.id, assistant.id)
    procs = [start(w.race_create, emu.env(), store, ids, barrier, out, release) for _ in range(6)]
    results = [out.get(timeout=120) for _ in procs]
    release.set()
    join_all(procs)
    assert sorted(r[0] for r in results) == ["accepted"] + ["refused"] * 5
    assert {r[1:] for r in results if r[0] == "refused"} == {(400, "InvalidParameter")}
    (run,) = compat.Runs.list(thread.id).data
    assert run.status == "cancelled"  # the winner closed its stream when released


def test_processes_racing_to_submit_tool_outputs_continue_once(
    shared: tuple[Emulator, str],
) -> None:
    emu, store = shared
    emu.queue(Scenario.function_call("lookup", {"key": "a"}, then="Done."))
    assistant = compat.Assistants.create(model="qwen-plus", tools=[TOOL])
    thread = compat.Threads.create(messages=[{"role": "user", "content": "look it up"}])
    run = compat.Runs.create(thread.id, assistant_id=assistant.id)
    waiting = compat.Runs.wait(run.id, thread_id=thread.id)
    (call,) = waiting.required_action.submit_tool_outputs.tool_calls
    barrier, out = SPAWN.Barrier(5), SPAWN.Queue()
    ids = (thread.id, run.id, call.id)
    procs = [start(w.race_submit, emu.env(), store, ids, barrier, out) for _ in range(5)]
    codes = sorted(out.get(timeout=120) for _ in procs)
    join_all(procs)
    assert codes == [200, 400, 400, 400, 400]
    assert compat.Runs.retrieve(run.id, thread_id=thread.id).status == "completed"
    outputs = [
        item
        for r in emu.requests
        if r.path.endswith("/responses")
        for item in r.json["input"]
        if item.get("type") == "function_call_output"
    ]
    assert outputs == [{"type": "function_call_output", "call_id": call.id, "output": "A"}]


def test_a_run_driven_by_one_process_is_cancelled_from_another(
    shared: tuple[Emulator, str],
) -> None:
    emu, store = shared
    emu.queue(stalled("Partial answer"))
    assistant = compat.Assistants.create(model="qwen-plus")
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    out = SPAWN.Queue()
    driver = start(w.drive_until_cancelled, emu.env(), store, (thread.id, assistant.id), out)
    kind, run_id = out.get(timeout=120)
    assert kind == "driving"
    reply = compat.Runs.cancel(run_id, thread_id=thread.id)
    assert reply.status == "cancelling"
    # The upstream stays silent for two minutes: waiting half that long fails unless the
    # driver's blocked read is interrupted (its keeper sees the cancel in the store).
    kind, rest = out.get(timeout=60)
    join_all([driver])
    assert rest[-1] == "thread.run.cancelled"
    run = compat.Runs.retrieve(run_id, thread_id=thread.id)
    assert run.status == "cancelled"
    (message,) = [m for m in compat.Messages.list(thread.id).data if m.role == "assistant"]
    assert (message.status, message.content[0].text.value) == ("incomplete", "Partial answer")
    again = compat.Runs.create(thread.id, assistant_id=assistant.id)
    assert compat.Runs.wait(again.id, thread_id=thread.id).status == "completed"


def test_eight_processes_of_twenty_runs_all_complete(shared: tuple[Emulator, str]) -> None:
    emu, store = shared
    assistant = compat.Assistants.create(model="qwen-plus")
    out = SPAWN.Queue()
    procs = [start(w.many_runs, emu.env(), store, assistant.id, 20, out) for _ in range(8)]
    seen = [pair for _ in procs for pair in out.get(timeout=300)]
    join_all(procs)
    assert len(seen) == 160
    for thread_id, text in seen:
        (run,) = compat.Runs.list(thread_id).data
        assert run.status == "completed"
        messages = compat.Messages.list(thread_id, order="asc").data
        assert [m.role for m in messages] == ["user", "assistant"]
        assert messages[1].content[0].text.value == text
        assert text.startswith('You said: "question ')


FORK = """
import multiprocessing, os, sys
sys.path.insert(0, sys.argv[1])
import compat
from tests.consumer import proc_workers as w

compat.configure(backend="responses", store=sys.argv[2])
assistant = compat.Assistants.create(model="qwen-plus")
warm = compat.Threads.create(messages=[{"role": "user", "content": "warm up"}])
first = compat.Runs.create(warm.id, assistant_id=assistant.id)
assert compat.Runs.wait(first.id, thread_id=warm.id).status == "completed"  # compat is in use
thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])

fork = multiprocessing.get_context("fork")
out, release = fork.Queue(), fork.Event()
driver = fork.Process(target=w.forked_child, args=("driver", thread.id, assistant.id, out, release))
reader = fork.Process(target=w.forked_child, args=("reader", thread.id, assistant.id, out, release))
driver.start()
reader.start()
got = {}
for _ in range(4):
    kind, value = out.get(timeout=120)
    got.setdefault(kind, []).append(value)
(run,) = compat.Runs.list(thread.id).data
compat.Runs.cancel(run.id, thread_id=thread.id)
release.set()
got.setdefault("ended", []).append(out.get(timeout=120)[1])
driver.join(60)
reader.join(60)
from compat.backends.responses.ownership import worker_id
print(len(set(got["worker"]) | {worker_id()}), got["seen"][0], got["ended"][0], flush=True)
"""


def test_processes_forked_after_first_use_do_not_reap_each_others_runs(
    shared: tuple[Emulator, str],
) -> None:
    emu, store = shared
    emu.queue(Scenario.text("warm"), stalled())
    env = dict(os.environ, **emu.env())
    result = subprocess.run(
        [sys.executable, "-c", FORK, str(ROOT), store],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    workers, seen, ended = result.stdout.split()
    assert workers == "3"  # the parent and each child: three worker identities
    assert seen == "in_progress"
    assert ended == "thread.run.cancelled"


KILLED = """
import sys
sys.path.insert(0, sys.argv[1])
import compat
compat.configure(backend="responses", store=sys.argv[2], lease_seconds=0.6)
announced = False
for event, data in compat.Runs.create(sys.argv[3], assistant_id=sys.argv[4], stream=True):
    if event == "thread.message.delta" and not announced:
        print("streaming", flush=True)  # and read on until the test kills the process
        announced = True
"""


def _kill_while_streaming(
    shared: tuple[Emulator, str], checkpointed: Callable[[str], object]
) -> tuple[Any, Any, list[str]]:
    """A child process streams a long answer on a new thread and is killed (-9) once
    ``checkpointed(thread_id)`` holds: (the assistant, the thread, the answer's words)."""
    emu, store = shared
    words = [f"w{n} " for n in range(3000)]
    emu.queue(Scenario.of(Text("".join(words), chunks=words)).paced(0.01))
    assistant = compat.Assistants.create(model="qwen-plus")
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    env = dict(os.environ, **emu.env())
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(ROOT), store, thread.id, assistant.id],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"streaming\n"
        wait_for(lambda: checkpointed(thread.id), "the partial text to be checkpointed")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(60)
        if child.stdout is not None:
            child.stdout.close()
    return assistant, thread, words


def test_a_killed_drivers_run_is_reaped_with_its_text_so_far(shared: tuple[Emulator, str]) -> None:
    def checkpointed(thread_id: str) -> Any:
        messages = [m for m in compat.Messages.list(thread_id).data if m.role == "assistant"]
        if messages and messages[0].content and messages[0].content[0].text.value:
            return messages[0]
        return None

    # The message was stored when it was created; the lease renewals store its text.
    assistant, thread, words = _kill_while_streaming(shared, checkpointed)
    (run,) = compat.Runs.list(thread.id).data
    reaped = wait_for(
        lambda: (r := compat.Runs.retrieve(run.id, thread_id=thread.id)).status == "expired" and r,
        "the orphan to be reaped",
    )
    assert reaped.last_error["code"] == "worker_lost"
    (message,) = [m for m in compat.Messages.list(thread.id).data if m.role == "assistant"]
    text = message.content[0].text.value
    assert message.status == "incomplete"
    assert text and "".join(words).startswith(text)
    (step,) = compat.Steps.list(run.id, thread_id=thread.id).data
    assert step.step_details.message_creation.message_id == message.id
    assert step.status == "expired"
    again = compat.Runs.create(thread.id, assistant_id=assistant.id)
    assert compat.Runs.wait(again.id, thread_id=thread.id).status == "completed"


@pytest.mark.parametrize("reader", ["Messages.list", "Messages.retrieve", "Threads.retrieve"])
def test_reading_the_thread_of_a_killed_driver_reaps_its_run(
    shared: tuple[Emulator, str], reader: str
) -> None:
    # Nobody reads the run: reading the thread or its messages is enough to reap it.
    _, thread, words = _kill_while_streaming(shared, _stored_text)
    run_id = _raw("thread", thread.id).meta["active_run_id"]
    message_id = _stored_text(thread.id)[0]
    read = {
        "Messages.list": lambda: compat.Messages.list(thread.id),
        "Messages.retrieve": lambda: compat.Messages.retrieve(message_id, thread_id=thread.id),
        "Threads.retrieve": lambda: compat.Threads.retrieve(thread.id),
    }[reader]

    def reaped() -> bool:
        assert read().status_code == 200
        return bool(_raw("run", run_id).data["status"] == "expired")

    wait_for(reaped, f"{reader} to reap the orphan once its lease lapsed")
    (message,) = [m for m in compat.Messages.list(thread.id).data if m.role == "assistant"]
    text = message.content[0].text.value
    assert (message.id, message.status) == (message_id, "incomplete")
    assert text and "".join(words).startswith(text)
    assert _raw("thread", thread.id).meta["active_run_id"] is None
    run = compat.Runs.retrieve(run_id, thread_id=thread.id)
    assert (run.status, run.last_error["code"]) == ("expired", "worker_lost")


def _raw(kind: Any, object_id: str) -> Any:
    """The stored record, read from the store itself (no facade call: nothing is reaped)."""
    backend, opts = compat._facade._options(None, None, {})
    record = backend.store(opts).get(kind, object_id)
    assert record is not None
    return record


def _stored_text(thread_id: str) -> tuple[str, str] | None:
    """(id, text) of the thread's assistant message, as stored, once it has text."""
    backend, opts = compat._facade._options(None, None, {})
    for message in backend.store(opts).list("message", parent_id=thread_id).data:
        if message["role"] == "assistant" and message["content"]:
            text = message["content"][0]["text"]["value"]
            if text:
                return message["id"], text
    return None


SHORT_LIVED = """
import sys
sys.path.insert(0, sys.argv[1])
import compat
compat.configure(backend="responses", store=sys.argv[2])
assistant = compat.Assistants.create(model="qwen-plus")
thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
run = compat.Runs.create(thread.id, assistant_id=assistant.id)
print(thread.id, run.id, run.status, flush=True)
"""  # and exit at once, without waiting for the run


def test_a_process_that_exits_normally_finishes_its_non_streamed_runs(
    shared: tuple[Emulator, str],
) -> None:
    emu, store = shared
    emu.queue(Scenario.text("word " * 60).paced(0.01))
    env = dict(os.environ, **emu.env())
    result = subprocess.run(
        [sys.executable, "-c", SHORT_LIVED, str(ROOT), store],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    thread_id, run_id, status = result.stdout.split()
    assert status == "queued"
    run = compat.Runs.retrieve(run_id, thread_id=thread_id)
    assert run.status == "completed"
    (answer, _) = compat.Messages.list(thread_id).data
    assert (answer.role, answer.status) == ("assistant", "completed")
    assert answer.content[0].text.value.split() == ["word"] * 60


STUCK_AT_EXIT = """
import sys
sys.path.insert(0, sys.argv[1])
import compat
from tests.consumer.held import wait_for
compat.configure(backend="responses", store=sys.argv[2], exit_timeout=1)
assistant = compat.Assistants.create(model="qwen-plus")
thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
run = compat.Runs.create(thread.id, assistant_id=assistant.id)
wait_for(lambda: len(compat.Messages.list(thread.id).data) == 2, "the answer to begin")
print(assistant.id, thread.id, run.id, flush=True)
"""  # and exit while the upstream is silent: compat waits exit_timeout, not the stall


def test_a_run_unfinished_when_the_exit_timeout_ends_is_expired_and_the_process_exits(
    shared: tuple[Emulator, str],
) -> None:
    emu, store = shared
    emu.queue(stalled("Partial answer"))  # silent for two minutes after its first words
    env = dict(os.environ, **emu.env())
    result = subprocess.run(  # the bound is well below the stall: waiting it out would fail
        [sys.executable, "-c", STUCK_AT_EXIT, str(ROOT), store],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    assistant_id, thread_id, run_id = result.stdout.split()
    run = compat.Runs.retrieve(run_id, thread_id=thread_id)
    assert (run.status, run.last_error["code"]) == ("expired", "worker_lost")
    assert "COMPAT_EXIT_TIMEOUT" in run.last_error["message"]
    (message, _) = compat.Messages.list(thread_id).data
    assert (message.role, message.status) == ("assistant", "incomplete")
    assert message.content[0].text.value == "Partial answer"  # the text so far is kept
    (step,) = compat.Steps.list(run_id, thread_id=thread_id).data
    assert step.step_details.message_creation.message_id == message.id
    assert step.status == "expired"
    again = compat.Runs.create(thread_id, assistant_id=assistant_id)  # the thread is free
    assert compat.Runs.wait(again.id, thread_id=thread_id).status == "completed"


def test_a_process_exiting_after_its_runs_finish_leaves_the_wal_folded_in(
    compat_emulator: Emulator, tmp_path: Path
) -> None:
    # The store's connections are closed after the runs finished at exit have written: the last
    # connection out checkpoints the WAL into the file and removes it. Nothing else has the file
    # open (this process has not touched it).
    store = str(tmp_path / "alone.sqlite3")
    compat_emulator.queue(Scenario.text("word " * 60).paced(0.01))
    env = dict(os.environ, **compat_emulator.env())
    result = subprocess.run(
        [sys.executable, "-c", SHORT_LIVED, str(ROOT), store],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    assert result.stdout.split()[2] == "queued"  # finished at exit, then the store closed
    wal = Path(f"{store}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    compat.configure(backend="responses", store=store)
    try:
        thread_id, run_id, _ = result.stdout.split()
        assert compat.Runs.retrieve(run_id, thread_id=thread_id).status == "completed"
    finally:
        compat.configure(reset=True)


AT_EXIT = """
import atexit, sys

def at_exit():
    # Python 3.12+ refuses new threads by now; before 3.12 a thread started now is not waited
    # for unless compat's own exit handler runs after this one
    import compat
    assistant = compat.Assistants.create(model="qwen-plus")
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    stream = compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    events = [event for event, _ in stream]
    print(thread.id, events[-1], flush=True)
    other = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    run = compat.Runs.create(other.id, assistant_id=assistant.id)
    print(other.id, run.id, run.status, flush=True)

sys.path.insert(0, sys.argv[1])
if sys.argv[3] == "before":  # the program's handler is registered before compat is imported
    atexit.register(at_exit)
import compat
compat.configure(backend="responses", store=sys.argv[2])
if sys.argv[3] == "after":
    atexit.register(at_exit)
"""


@pytest.mark.parametrize("registered", ["before", "after"])
def test_runs_started_at_interpreter_exit_still_complete(
    shared: tuple[Emulator, str], registered: str
) -> None:
    emu, store = shared
    emu.queue(Scenario.text("word " * 20), Scenario.text("word " * 60).paced(0.01))
    env = dict(os.environ, **emu.env())
    result = subprocess.run(
        [sys.executable, "-c", AT_EXIT, str(ROOT), store, registered],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    streamed, background = result.stdout.splitlines()
    thread_id, last = streamed.split()
    assert last == "thread.run.completed"
    assert compat.Runs.list(thread_id).data[0].status == "completed"
    thread_id, run_id, status = background.split()
    assert status == "queued"
    assert compat.Runs.retrieve(run_id, thread_id=thread_id).status == "completed"
    assert result.stderr == ""
