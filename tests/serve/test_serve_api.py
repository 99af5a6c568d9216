"""The proxy's HTTP surface: keys and tenants, errors, health, the request log, shutdown."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import httpx
import pytest

from compat.serve.app import ServeApp
from compat.serve.server import BackgroundServer
from compat.serve.tenants import tenant_of
from compat.testing import Emulator, Scenario

from .conftest import dashscope

OTHER_KEY = "sk-another-tenant"


def _client(proxy: BackgroundServer, key: str | None) -> httpx.Client:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return httpx.Client(base_url=proxy.base_url, headers=headers, timeout=30)


def test_health_needs_no_key(proxy: BackgroundServer) -> None:
    with _client(proxy, None) as client:
        reply = client.get(f"http://127.0.0.1:{proxy.port}/healthz")
    assert (reply.status_code, reply.json()) == (200, {"status": "ok"})


def test_a_request_without_a_key_is_refused_as_dashscope_refuses_it(
    proxy: BackgroundServer,
) -> None:
    with _client(proxy, None) as client:
        reply = client.post("/assistants", json={"model": "qwen-plus"})
    assert reply.status_code == 401
    body = reply.json()
    assert (body["code"], body["message"]) == ("InvalidApiKey", "Invalid API-key provided.")
    assert body["request_id"]


def test_objects_are_private_to_the_key_that_created_them(
    proxy: BackgroundServer, raw_dashscope: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashscope, "base_http_api_url", proxy.base_url)
    api = raw_dashscope
    mine = api.Assistants.create(model="qwen-plus", name="mine")
    thread = api.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    theirs = api.Assistants.create(model="qwen-plus", name="theirs", api_key=OTHER_KEY)
    assert (mine.status_code, thread.status_code, theirs.status_code) == (200, 200, 200)

    denied = [
        api.Assistants.retrieve(mine.id, api_key=OTHER_KEY),
        api.Assistants.update(mine.id, name="stolen", api_key=OTHER_KEY),
        api.Assistants.delete(mine.id, api_key=OTHER_KEY),
        api.Threads.retrieve(thread.id, api_key=OTHER_KEY),
        api.Messages.list(thread.id, api_key=OTHER_KEY),
        api.Runs.list(thread.id, api_key=OTHER_KEY),
        api.Runs.create(thread.id, assistant_id=theirs.id, api_key=OTHER_KEY),
    ]
    assert [(d.status_code, d.code) for d in denied] == [(400, "InvalidParameter")] * 7
    assert denied[0].message == "The specified assistant has been deleted or does not exist."
    assert denied[3].message == "The specified thread has been deleted or does not exist."
    # Someone else's assistant on my thread: the assistant is unknown to me.
    foreign = api.Runs.create(thread.id, assistant_id=theirs.id)
    assert (foreign.status_code, foreign.code) == (400, "InvalidParameter")

    assert [a.name for a in api.Assistants.list().data] == ["mine"]
    assert [a.name for a in api.Assistants.list(api_key=OTHER_KEY).data] == ["theirs"]
    assert api.Assistants.retrieve(mine.id).name == "mine"


def test_objects_are_stored_under_the_hash_of_the_key_never_the_key(
    proxy: BackgroundServer, raw_dashscope: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashscope, "base_http_api_url", proxy.base_url)
    assistant = raw_dashscope.Assistants.create(model="qwen-plus", api_key=OTHER_KEY)
    record = proxy.app.tenants.store.get("assistant", assistant.id)
    assert record is not None
    assert record.meta["tenant"] == tenant_of(OTHER_KEY) != OTHER_KEY
    assert OTHER_KEY not in json.dumps([record.data, record.meta])


def test_listing_assistants_pages_over_the_callers_own(
    proxy: BackgroundServer, raw_dashscope: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashscope, "base_http_api_url", proxy.base_url)
    api = raw_dashscope
    names = []
    for i in range(5):
        names.append(api.Assistants.create(model="m", name=f"a{i}").name)
        api.Assistants.create(model="m", name=f"other{i}", api_key=OTHER_KEY)
    first = api.Assistants.list(limit=2, order="asc")
    assert ([a.name for a in first.data], first.has_more) == (["a0", "a1"], True)
    second = api.Assistants.list(limit=2, order="asc", after=first.last_id)
    assert ([a.name for a in second.data], second.has_more) == (["a2", "a3"], True)
    last = api.Assistants.list(limit=2, order="asc", after=second.last_id)
    assert ([a.name for a in last.data], last.has_more) == (["a4"], False)
    newest = api.Assistants.list(limit=3)
    assert [a.name for a in newest.data] == ["a4", "a3", "a2"]
    bad = api.Assistants.list(limit=1000)
    assert (bad.status_code, bad.code) == (400, "InvalidParameter")


def test_the_callers_key_is_the_key_used_upstream(
    proxy: BackgroundServer,
    raw_dashscope: Any,
    compat_emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dashscope, "base_http_api_url", proxy.base_url)
    api = raw_dashscope
    assistant = api.Assistants.create(model="qwen-plus", api_key=OTHER_KEY)
    thread = api.Threads.create(messages=[{"role": "user", "content": "Hi"}], api_key=OTHER_KEY)
    refused = api.Runs.create(thread.id, assistant_id=assistant.id, api_key=OTHER_KEY)
    # The emulator knows only its own key: the other key's run is refused upstream with 401.
    assert (refused.status_code, refused.code) == (401, "InvalidApiKey")

    compat_emulator.queue(Scenario.text("Hello."))
    assistant = api.Assistants.create(model="qwen-plus")
    thread = api.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    run = api.Runs.create(thread.id, assistant_id=assistant.id)
    assert api.Runs.wait(run.id, thread_id=thread.id).status == "completed"


def test_keys_can_be_restricted(compat_emulator: Emulator, tmp_path: Any) -> None:
    import compat

    compat.configure(backend="responses", store="memory")
    try:
        with BackgroundServer(ServeApp(frozenset({"sk-allowed"}))) as proxy:
            with _client(proxy, "sk-allowed") as client:
                ok = client.post("/assistants", json={"model": "m"})
            with _client(proxy, compat_emulator.api_key) as client:
                refused = client.post("/assistants", json={"model": "m"})
    finally:
        compat.configure(reset=True)
    assert ok.status_code == 200
    assert (refused.status_code, refused.json()["code"]) == (401, "InvalidApiKey")


def test_keys_come_from_the_environment_and_a_file(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compat.serve.tenants import allowed_keys

    keys_file = tmp_path / "keys"
    keys_file.write_text("sk-b\n\n  sk-c  \n", encoding="utf-8")
    assert allowed_keys({}) is None
    assert allowed_keys({"COMPAT_SERVE_KEYS": "sk-a, sk-d"}) == {"sk-a", "sk-d"}
    both = {"COMPAT_SERVE_KEYS": "sk-a", "COMPAT_SERVE_KEYS_FILE": str(keys_file)}
    assert allowed_keys(both) == {"sk-a", "sk-b", "sk-c"}


def test_errors_have_the_assistant_api_shape(
    proxy: BackgroundServer, compat_emulator: Emulator
) -> None:
    with _client(proxy, compat_emulator.api_key) as client:
        unknown = client.get("/threads/thread_nope/runs/run_nope")
        missing = client.post("/threads/thread_nope/messages", json={"content": "x"})
        assistant = client.post("/assistants", json={"model": "m"}).json()
        thread = client.post("/threads", content=b'""').json()
        no_content = client.post(f"/threads/{thread['id']}/messages", json={})
        no_assistant = client.post(f"/threads/{thread['id']}/runs", json={"stream": True})
        not_json = client.post("/assistants", content=b"{nope")
        bad_limit = client.get(f"/threads/{thread['id']}/messages?limit=abc")
        no_route = client.get("/nothing/here")
    assert assistant["object"] == "assistant" and thread["object"] == "thread"
    for reply in (unknown, missing, no_content, no_assistant, not_json, bad_limit):
        assert reply.status_code == 400, reply.text
        assert reply.headers["content-type"].startswith("application/json")
        body = reply.json()
        assert body["code"] == "InvalidParameter"
        assert set(body) == {"code", "message", "request_id"}
    assert unknown.json()["message"] == "The specified thread has been deleted or does not exist."
    assert no_content.json()["message"] == "thread_id and content are required!"
    assert no_route.status_code == 404


def test_each_request_is_logged_without_key_or_content(
    proxy: BackgroundServer, compat_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"messages": [{"role": "user", "content": "SECRET"}]}
    with (
        caplog.at_level(logging.INFO, logger="compat.serve"),
        _client(proxy, compat_emulator.api_key) as client,
    ):
        thread = client.post("/threads", json=body)
        client.get(f"/threads/{thread.json()['id']}")
    lines = [r.getMessage() for r in caplog.records if r.name == "compat.serve"]
    assert [line.rsplit(" ", 1)[0] for line in lines] == [
        "POST /api/v1/threads 200",
        "GET /api/v1/threads/{id} 200",
    ]
    assert all(line.endswith("ms") for line in lines)
    text = "\n".join(lines)
    assert "SECRET" not in text and compat_emulator.api_key not in text


def test_shutdown_ends_an_open_stream_as_cancelled_and_stores_it(
    compat_emulator: Emulator, raw_dashscope: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import compat

    compat.configure(backend="responses", store=str(tmp_path / "store.db"))
    compat_emulator.queue(Scenario.text("slow " * 400).paced(0.01))
    proxy = BackgroundServer().start()
    stopper = threading.Thread(target=proxy.stop)
    try:
        monkeypatch.setattr(dashscope, "base_http_api_url", proxy.base_url)
        api = raw_dashscope
        assistant = api.Assistants.create(model="qwen-plus")
        thread = api.Threads.create(messages=[{"role": "user", "content": "Hi"}])
        stream = api.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
        seen = []
        for event, data in stream:
            seen.append((event, data))
            if event == "thread.message.delta" and not stopper.is_alive():
                stopper.start()
        stopper.join(30)
        assert not stopper.is_alive()
        last_event, last = seen[-1]
        assert (last_event, last.status) == ("thread.run.cancelled", "cancelled")
        assert "thread.run.completed" not in [event for event, _ in seen]
        stored = compat.Runs.retrieve(last.id, thread_id=thread.id)
        assert stored.status == "cancelled"
    finally:
        if not stopper.is_alive() and not proxy.server.should_exit:
            proxy.stop()
        compat.configure(reset=True)
