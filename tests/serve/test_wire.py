"""The proxy's pure parts: routing, body and query parsing, SSE framing, tenant names."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from compat import types as t
from compat.serve import wire as w
from compat.serve.calls import wire_page
from compat.serve.tenants import bearer_key, tenant_of


@pytest.mark.parametrize(
    ("method", "path", "name", "ids"),
    [
        ("POST", "/api/v1/threads/runs", "create_thread_and_run", []),
        ("POST", "/api/v1/threads/thread_1", "update_thread", ["thread_1"]),
        ("POST", "/api/v1/threads/t/runs", "create_run", ["t"]),
        ("POST", "/api/v1/threads/t/runs/r/cancel", "cancel_run", ["t", "r"]),
        ("GET", "/api/v1/threads/t/runs/r/steps/s", "retrieve_step", ["t", "r", "s"]),
        ("DELETE", "/api/v1/assistants/a/", "delete_assistant", ["a"]),
    ],
)
def test_routes(method: str, path: str, name: str, ids: list[str]) -> None:
    found = w.match(method, path)
    assert found is not None
    assert (found[0].name, found[1]) == (name, ids)


def test_unknown_routes_and_templates() -> None:
    assert w.match("PUT", "/api/v1/assistants") is None
    assert w.match("GET", "/v1/assistants") is None
    route = w.match("GET", "/api/v1/threads/t/messages/m")
    assert route is not None and route[0].template == "/api/v1/threads/{id}/messages/{id}"


def test_bodies() -> None:
    assert w.parse_body(b"") == {} == w.parse_body(b'""')
    assert w.parse_body(b'{"a":1}') == {"a": 1}
    with pytest.raises(w.ApiError, match="not valid JSON"):
        w.parse_body(b"{")
    with pytest.raises(w.ApiError, match="must be a JSON object"):
        w.parse_body(b"[1]")


def test_list_queries() -> None:
    assert w.list_query(b"limit=5&order=asc&after=x") == {
        "limit": 5,
        "order": "asc",
        "after": "x",
        "before": None,
    }
    with pytest.raises(w.ApiError) as caught:
        w.list_query(b"limit=five")
    assert (caught.value.status, caught.value.code) == (400, "InvalidParameter")


def test_sse_frames_are_what_dashscope_parses() -> None:
    frame = w.sse("thread.run.created", {"id": "run_1", "text": "a\nb", "zh": "你好"})
    assert frame == (
        b'event:thread.run.created\ndata:{"id":"run_1","text":"a\\nb","zh":"\xe4\xbd\xa0\xe5\xa5\xbd"}'
        b"\n\n"
    )
    assert w.DONE == b"event:done\ndata:[DONE]\n\n"


def test_a_message_delta_goes_back_to_a_content_array() -> None:
    content = {"type": "text", "text": {"value": "Hi", "annotations": []}}
    wire: dict[str, Any] = {
        "id": "msg_1",
        "object": "thread.message.delta",
        "delta": {
            "role": "assistant",
            "content": [content],
        },
    }
    typed = t.ThreadMessageDelta.from_dict({**wire, "status_code": 200})
    assert json.loads(w.json_bytes(w.message_delta(typed)))["delta"] == wire["delta"]
    # The hot path builds the same bytes; other shapes take the general path.
    assert w.text_delta_frame(typed) == w.sse("thread.message.delta", w.message_delta(typed))
    indexed = {**wire, "delta": {**wire["delta"], "content": [{"index": 0, **content}]}}
    typed_indexed = t.ThreadMessageDelta.from_dict(indexed)  # as compat's translator builds it
    assert w.text_delta_frame(typed_indexed) == w.sse("thread.message.delta", indexed)
    typed.delta.content.text.annotations = [{"type": "file_citation"}]
    assert w.text_delta_frame(typed) is None


def test_wire_dicts_drop_the_sdk_status_code() -> None:
    thread = t.Thread.from_dict({"id": "thread_1", "created_at": 1, "status_code": 200})
    assert "status_code" not in w.wire_dict(thread)
    assert w.wire_dict(thread)["id"] == "thread_1"


def test_pages_over_a_filtered_list() -> None:
    objs = [SimpleNamespace(id=f"a{i}") for i in range(5)]
    page = wire_page(objs, 2, "a0", None)
    assert ([o.id for o in page["data"]], page["has_more"]) == (["a1", "a2"], True)
    page = wire_page(objs, 2, None, "a3")
    assert ([o.id for o in page["data"]], page["has_more"]) == (["a1", "a2"], True)
    page = wire_page(objs, 10, None, None)
    assert (page["first_id"], page["last_id"], page["has_more"]) == ("a0", "a4", False)


def test_keys_and_tenant_names() -> None:
    assert bearer_key("Bearer sk-1") == "sk-1"
    assert bearer_key("bearer  sk-1 ") == "sk-1"
    assert bearer_key("Basic abc") is None
    assert bearer_key("Bearer ") is None
    assert bearer_key(None) is None
    assert tenant_of("sk-1") == tenant_of("sk-1") != tenant_of("sk-2")
    assert len(tenant_of("sk-1")) == 64 and "sk-1" not in tenant_of("sk-1")
