"""Each endpoint as a ``compat.aio`` call: the request's ids, body and query → facade arguments.

A handler returns what the facade returns (a typed object, an error object with
``status_code``, or a stream), after the tenant checks. Body keys the facade has no parameter
for are dropped, except on run creation, where dashscope merged ``extra_body`` into the body:
there they go back into ``extra_body``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from compat import aio
from compat import types as t
from compat._objects import ASSISTANT_FIELDS
from compat.serve.tenants import Tenants

__all__ = ["HANDLERS", "Call", "wire_page"]

JSON = dict[str, Any]

# ``compat.aio`` builds its classes at import; typed ``Any`` here, their methods are coroutines.
Assistants: Any = aio.Assistants
Threads: Any = aio.Threads
Messages: Any = aio.Messages
Runs: Any = aio.Runs
Steps: Any = aio.Steps

_RUN_FIELDS = (
    "assistant_id",
    "model",
    "instructions",
    "additional_instructions",
    "tools",
    "metadata",
    "stream",
    "top_p",
    "top_k",
    "temperature",
    "max_tokens",
)
_THREAD_RUN_FIELDS = (
    "assistant_id",
    "thread",
    "model",
    "instructions",
    "additional_instructions",
    "tools",
    "metadata",
    "stream",
)
#: Never taken from a body: they are the caller's identity, from the headers.
_RESERVED = frozenset({"api_key", "workspace", "extra_body", "thread_id", "run_id"})


@dataclass(frozen=True)
class Call:
    """One request: the caller's key and tenant, its workspace header, body and query."""

    key: str
    tenant: str
    workspace: str | None
    body: JSON
    query: JSON
    tenants: Tenants

    @property
    def auth(self) -> JSON:
        return {"api_key": self.key, "workspace": self.workspace}

    def pick(self, names: tuple[str, ...]) -> JSON:
        return {k: self.body[k] for k in names if k in self.body}

    def extra(self, names: tuple[str, ...]) -> JSON:
        """Body keys beyond ``names``: what dashscope's ``extra_body`` merged into the body."""
        rest = {k: v for k, v in self.body.items() if k not in names and k not in _RESERVED}
        nested = self.body.get("extra_body")
        if isinstance(nested, dict):
            rest.update(nested)
        return rest


def _ok(reply: Any) -> bool:
    return getattr(reply, "status_code", 200) == 200


# --- assistants ---------------------------------------------------------------------------


async def create_assistant(call: Call) -> Any:
    fields = call.pick(ASSISTANT_FIELDS)
    fields.setdefault("model", None)
    reply = await Assistants.create(**fields, **call.auth)
    if _ok(reply):
        await call.tenants.claim("assistant", reply.id, call.tenant)
    return reply


async def list_assistants(call: Call) -> Any:
    """The caller's assistants, paginated over the filtered list (see ``wire_page``)."""
    query = call.query
    limit = 20 if query["limit"] is None else query["limit"]
    order = query["order"] or "desc"
    probe = await Assistants.list(limit=limit, order=order, **call.auth)
    if not _ok(probe):
        return probe  # the facade's own answer to a bad limit or order
    for cursor in (query["after"], query["before"]):
        if cursor is not None:
            await call.tenants.check("assistant", cursor, call.tenant)
    mine: list[Any] = []
    after = None
    while True:
        page = await Assistants.list(limit=100, order=order, after=after, **call.auth)
        if not _ok(page):
            return page
        owned = await call.tenants.owned("assistant", [a.id for a in page.data], call.tenant)
        mine += [a for a in page.data if a.id in owned]
        if not page.has_more or not page.data:
            break
        after = page.data[-1].id
    return wire_page(mine, limit, query["after"], query["before"])


def wire_page(objs: list[Any], limit: int, after: str | None, before: str | None) -> JSON:
    """A list page over ``objs`` (already in the requested order), as the store pages."""
    ids = [obj.id for obj in objs]
    start, end = 0, len(objs)
    if after is not None:
        start = ids.index(after) + 1
    if before is not None:
        end = ids.index(before)
    window = objs[start:end]
    if before is not None and after is None:
        page, has_more = window[-limit:], len(window) > limit
    else:
        page, has_more = window[:limit], len(window) > limit
    return {
        "object": "list",
        "data": page,
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
        "has_more": has_more,
        "request_id": str(uuid.uuid4()),
    }


async def retrieve_assistant(call: Call, assistant_id: str) -> Any:
    await call.tenants.check("assistant", assistant_id, call.tenant)
    return await Assistants.retrieve(assistant_id, **call.auth)


async def update_assistant(call: Call, assistant_id: str) -> Any:
    await call.tenants.check("assistant", assistant_id, call.tenant)
    return await Assistants.update(assistant_id, **call.pick(ASSISTANT_FIELDS), **call.auth)


async def delete_assistant(call: Call, assistant_id: str) -> Any:
    await call.tenants.check("assistant", assistant_id, call.tenant)
    return await Assistants.delete(assistant_id, **call.auth)


# --- threads --------------------------------------------------------------------------------


async def create_thread(call: Call) -> Any:
    reply = await Threads.create(**call.pick(("messages", "metadata")), **call.auth)
    if _ok(reply):
        await call.tenants.claim("thread", reply.id, call.tenant)
    return reply


async def create_thread_and_run(call: Call) -> Any:
    assistant_id = call.body.get("assistant_id")
    if assistant_id:
        await call.tenants.check("assistant", assistant_id, call.tenant)
    fields = call.pick(_THREAD_RUN_FIELDS)
    fields.setdefault("assistant_id", None)
    extra = call.extra(_THREAD_RUN_FIELDS)
    reply = await Runs.create_thread_and_run(**fields, extra_body=extra or None, **call.auth)
    if isinstance(reply, AsyncIterator):
        return _claiming(reply, call)
    if _ok(reply):
        await call.tenants.claim("thread", reply.thread_id, call.tenant)
    return reply


async def _claiming(items: AsyncIterator[Any], call: Call) -> AsyncIterator[Any]:
    """The stream, with its new thread made the caller's before the client hears of it."""
    try:
        async for event, data in items:
            if event == "thread.created":
                await call.tenants.claim("thread", data.id, call.tenant)
            yield event, data
    finally:
        await items.aclose()  # type: ignore[attr-defined]


async def retrieve_thread(call: Call, thread_id: str) -> Any:
    return await Threads.retrieve(thread_id, **call.auth)


async def update_thread(call: Call, thread_id: str) -> Any:
    return await Threads.update(thread_id, metadata=call.body.get("metadata"), **call.auth)


async def delete_thread(call: Call, thread_id: str) -> Any:
    return await Threads.delete(thread_id, **call.auth)


# --- messages -------------------------------------------------------------------------------


async def create_message(call: Call, thread_id: str) -> Any:
    fields = call.pick(("content", "role", "file_ids", "metadata"))
    fields.setdefault("content", None)
    return await Messages.create(thread_id, **fields, **call.auth)


async def list_messages(call: Call, thread_id: str) -> Any:
    return await Messages.list(thread_id, **call.query, **call.auth)


async def retrieve_message(call: Call, thread_id: str, message_id: str) -> Any:
    return await Messages.retrieve(message_id, thread_id=thread_id, **call.auth)


async def update_message(call: Call, thread_id: str, message_id: str) -> Any:
    metadata = call.body.get("metadata")
    return await Messages.update(message_id, thread_id=thread_id, metadata=metadata, **call.auth)


# --- runs and steps -------------------------------------------------------------------------


async def create_run(call: Call, thread_id: str) -> Any:
    assistant_id = call.body.get("assistant_id")
    if assistant_id:
        await call.tenants.check("assistant", assistant_id, call.tenant)
    fields = call.pick(_RUN_FIELDS)
    fields.setdefault("assistant_id", None)
    extra = call.extra(_RUN_FIELDS)
    return await Runs.create(thread_id, **fields, extra_body=extra or None, **call.auth)


async def list_runs(call: Call, thread_id: str) -> Any:
    return await Runs.list(thread_id, **call.query, **call.auth)


async def retrieve_run(call: Call, thread_id: str, run_id: str) -> Any:
    return await Runs.retrieve(run_id, thread_id=thread_id, **call.auth)


async def update_run(call: Call, thread_id: str, run_id: str) -> Any:
    metadata = call.body.get("metadata")
    return await Runs.update(run_id, thread_id=thread_id, metadata=metadata, **call.auth)


async def cancel_run(call: Call, thread_id: str, run_id: str) -> Any:
    return await Runs.cancel(run_id, thread_id=thread_id, **call.auth)


async def submit_tool_outputs(call: Call, thread_id: str, run_id: str) -> Any:
    names = ("tool_outputs", "stream")
    extra = call.extra(names)
    return await Runs.submit_tool_outputs(
        run_id,
        thread_id=thread_id,
        tool_outputs=call.body.get("tool_outputs"),
        stream=call.body.get("stream", False),
        extra_body=extra or None,
        **call.auth,
    )


async def list_steps(call: Call, thread_id: str, run_id: str) -> Any:
    return await Steps.list(run_id, thread_id=thread_id, **call.query, **call.auth)


async def retrieve_step(call: Call, thread_id: str, run_id: str, step_id: str) -> Any:
    return await Steps.retrieve(step_id, thread_id=thread_id, run_id=run_id, **call.auth)


async def final_run(call: Call, thread_id: str, run_id: str) -> t.Run:
    """The run as stored now (after a stream ended early)."""
    run: t.Run = await Runs.retrieve(run_id, thread_id=thread_id, **call.auth)
    return run


Handler = Callable[..., Awaitable[Any]]

#: Route name → handler; every route naming a thread first checks the thread's tenant.
HANDLERS: dict[str, Handler] = {
    name: globals()[name]
    for name in (
        "create_assistant",
        "list_assistants",
        "retrieve_assistant",
        "update_assistant",
        "delete_assistant",
        "create_thread",
        "create_thread_and_run",
        "retrieve_thread",
        "update_thread",
        "delete_thread",
        "create_message",
        "list_messages",
        "retrieve_message",
        "update_message",
        "create_run",
        "list_runs",
        "retrieve_run",
        "update_run",
        "cancel_run",
        "submit_tool_outputs",
        "list_steps",
        "retrieve_step",
    )
}
