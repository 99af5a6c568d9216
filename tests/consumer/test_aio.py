"""``compat.aio``: the same facade as coroutines and async iterators.

Every consumer program of the sync facade also runs through ``compat.aio`` (the ``facade``
fixture in conftest.py); these tests add what only async code can show: many streams on one
event loop that never blocks for long, ``aclose()`` and task cancellation, the signatures.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import time
from typing import Any

import pytest

import compat
from compat import aio
from compat.testing import Emulator, Scenario

from .held import stalled

FACADE = ("Assistants", "Threads", "Messages", "Runs", "Steps")


def test_every_sync_method_has_a_coroutine_twin_with_the_same_signature() -> None:
    for name in FACADE:
        sync_cls, async_cls = getattr(compat, name), getattr(aio, name)
        public = [m for m in vars(sync_cls) if not m.startswith("_")]
        assert public, name
        for method in public:
            twin = getattr(async_cls, method)
            assert inspect.signature(twin) == inspect.signature(getattr(sync_cls, method))
            if method != "convert_stream_object":  # no I/O: a plain function on both
                assert inspect.iscoroutinefunction(twin), f"{name}.{method}"


def test_importing_compat_aio_imports_no_sdk() -> None:
    sdks = "('openai', 'dashscope', 'httpx2')"
    code = f"import sys, compat.aio; print(sorted(m for m in {sdks} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


AIO_RUN = """
import asyncio, os, sys
sys.path.insert(0, sys.argv[1])
import compat
from compat import aio
from compat.testing import Emulator

async def main():
    a = await aio.Assistants.create(model="qwen-plus")
    t = await aio.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    return [e async for e, _ in await aio.Runs.create(t.id, assistant_id=a.id, stream=True)]

with Emulator() as emu:
    os.environ.update(emu.env())
    compat.configure(backend="responses", store="memory")
    events = asyncio.run(main())
    assert events[-1] == "thread.run.completed", events
    print(sorted(m for m in ("openai", "httpx2", "httpx", "dashscope") if m in sys.modules))
"""


def test_a_streamed_run_on_compat_aio_imports_no_sdk() -> None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(
        [sys.executable, "-c", AIO_RUN, root],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip() == "[]"


@pytest.fixture(params=["memory", "sqlite"])
def on_responses(request: pytest.FixtureRequest, compat_emulator: Emulator, tmp_path: Any) -> Any:
    """The responses backend on the in-memory store (called inline) and on a SQLite file (store
    calls inline when its write lock is free at once, else off the loop: ``offload``)."""
    if os.environ.get("COMPAT_BACKEND", "responses") != "responses":
        pytest.skip("the event-loop driver is the responses backend's")
    store = "memory" if request.param == "memory" else str(tmp_path / "store.db")
    compat.configure(backend="responses", store=store)
    yield compat_emulator
    compat.configure(reset=True)


async def _stream_text(
    thread_id: str, assistant_id: str, log: list[tuple[str, str]] | None = None
) -> tuple[str, str]:
    stream = await aio.Runs.create(thread_id, assistant_id=assistant_id, stream=True)
    text, last = "", ""
    async for event, data in stream:
        last = event
        if log is not None:
            log.append((thread_id, event))
        if event == "thread.message.delta":
            text += data.delta.content.text.value
    return last, text


def test_thirty_two_streams_on_one_loop_complete_and_the_loop_stays_free(
    on_responses: Emulator,
) -> None:
    # Each run streams for about half a second: a loop blocked by a run would stall that long.
    # On SQLite, a store call that could wait for a lock runs off the loop.
    on_responses.queue(Scenario.text("warm"))
    for i in range(32):
        words = [f"w{i}-{n} " for n in range(25)]
        on_responses.queue(Scenario.text("".join(words), chunks=words).paced(0.02))

    async def main() -> tuple[list[tuple[str, str]], float]:
        assistant = await aio.Assistants.create(model="qwen-plus")
        threads = [
            await aio.Threads.create(messages=[{"role": "user", "content": f"Question {i}"}])
            for i in range(32)
        ]
        # A first run warms up what a process does once (its first connection, compat's
        # first-use paths) before the ticker starts.
        warm = await aio.Threads.create(messages=[{"role": "user", "content": "warm up"}])
        await _stream_text(warm.id, assistant.id)
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        tick = asyncio.create_task(ticker())
        results = await asyncio.gather(*(_stream_text(t.id, assistant.id, log) for t in threads))
        done.set()
        await tick
        return results, max(gaps)

    log: list[tuple[str, str]] = []
    results, longest = asyncio.run(main())
    assert [last for last, _ in results] == ["thread.run.completed"] * 32
    assert sorted(text for _, text in results) == sorted(
        "".join(f"w{i}-{n} " for n in range(25)) for i in range(32)
    )
    # The loop was never held by a run: every stream had its first text before any stream
    # ended (a run that blocked the loop would run the 32 one after another). The ticker's
    # longest stall is printed, not asserted: on a loaded machine it measures the machine.
    first_end = next(i for i, (_, event) in enumerate(log) if event == "thread.run.completed")
    begun = {thread for thread, event in log[:first_end] if event == "thread.message.delta"}
    assert len(begun) == 32
    store = "memory" if compat.configure().store == "memory" else "SQLite"
    print(f"longest event-loop stall during 32 streams ({store} store): {longest * 1000:.1f} ms")


def test_a_consumer_behind_the_network_reads_its_backlog_whole(on_responses: Emulator) -> None:
    # The stream's bytes pile up while the consumer sleeps (well over one piece the client
    # hands the parser at a time); then it reads them, the loop getting passes in between.
    words = [f"word{n} " for n in range(4000)]
    on_responses.queue(Scenario.text("".join(words), chunks=words))

    async def main() -> tuple[str, str]:
        assistant = await aio.Assistants.create(model="qwen-plus")
        thread = await aio.Threads.create(messages=[{"role": "user", "content": "Hi"}])
        stream = await aio.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
        text, last = "", ""
        async for event, data in stream:
            if not last:
                await asyncio.sleep(0.3)
            last = event
            if event == "thread.message.delta":
                text += data.delta.content.text.value
        return last, text

    assert asyncio.run(main()) == ("thread.run.completed", "".join(words))


def test_aclose_mid_stream_cancels_the_run(on_responses: Emulator) -> None:
    on_responses.queue(stalled("Partial"))

    async def main() -> tuple[str, str, str]:
        assistant = await aio.Assistants.create(model="qwen-plus")
        thread = await aio.Threads.create(messages=[{"role": "user", "content": "Hi"}])
        stream = await aio.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
        async for event, _ in stream:
            if event == "thread.message.delta":
                break
        await stream.aclose()
        (run,) = (await aio.Runs.list(thread.id)).data
        (message, _) = (await aio.Messages.list(thread.id)).data
        return run.status, message.status, message.content[0].text.value

    assert asyncio.run(main()) == ("cancelled", "incomplete", "Partial")


def test_cancelling_the_consuming_task_cancels_the_run(on_responses: Emulator) -> None:
    on_responses.queue(stalled("Partial"))

    async def main() -> str:
        assistant = await aio.Assistants.create(model="qwen-plus")
        thread = await aio.Threads.create(messages=[{"role": "user", "content": "Hi"}])
        started = asyncio.Event()

        async def consume() -> None:
            stream = await aio.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
            async for event, _ in stream:
                if event == "thread.message.delta":
                    started.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(started.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        (run,) = (await aio.Runs.list(thread.id)).data
        return str(run.status)

    assert asyncio.run(main()) == "cancelled"


def test_a_non_streamed_run_is_driven_on_the_loop_and_awaited(on_responses: Emulator) -> None:
    on_responses.queue(Scenario.text("Slow and steady.").paced(0.01))

    async def main() -> tuple[str, str, str]:
        assistant = await aio.Assistants.create(model="qwen-plus")
        thread = await aio.Threads.create(messages=[{"role": "user", "content": "Hi"}])
        run = await aio.Runs.create(thread.id, assistant_id=assistant.id)
        done = await aio.Runs.wait(run.id, thread_id=thread.id)
        (answer, _) = (await aio.Messages.list(thread.id)).data
        return run.status, done.status, answer.content[0].text.value

    assert asyncio.run(main()) == ("queued", "completed", "Slow and steady.")


def test_consumer_programs_observe_the_same_with_store_calls_off_the_loop(
    on_responses: Emulator,
) -> None:
    # The consumer suite runs compat.aio on the in-memory store; here the same programs run
    # on the fixture's store (on SQLite store calls run inline or in the offload pool): list
    # cursors and keyword arguments, a wait, a tool round trip, a raw error event.
    from . import programs, programs_tools
    from .conftest import AsyncBridge

    def observe(api: Any) -> list[Any]:
        scenario = Scenario.failure("server_error", "boom", after_text="Once", mode="error_event")
        return [
            programs.crud_and_errors(api),
            programs.simple_wait_and_list(api),
            programs_tools.function_round_trip(api, on_responses),
            programs_tools.failure_after_start(api, on_responses, scenario),
        ]

    expected = observe(compat)
    on_responses.reset()
    loop = asyncio.new_event_loop()
    try:
        assert observe(AsyncBridge(aio, loop)) == expected
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
