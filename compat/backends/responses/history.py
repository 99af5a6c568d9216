"""Thread history → Responses input (DESIGN decision 4).

``chain`` (default): send ``previous_response_id`` of the thread's last response plus only the
messages added since; ``replay``: resend the whole thread. A continuation after
``submit_tool_outputs`` sends the function outputs (chain) or the thread plus every function call
of the run, each immediately followed by its output (replay; DashScope requires the adjacency).
"""

from __future__ import annotations

from typing import Any

from compat.backends.responses.request import function_call_items, message_input
from compat.store import Store

__all__ = ["History", "chain_cursor"]

JSON = dict[str, Any]


def _all_messages(store: Store, thread_id: str, after: str | None = None) -> list[JSON]:
    messages: list[JSON] = []
    cursor = after
    while True:
        page = store.list("message", parent_id=thread_id, order="asc", limit=100, after=cursor)
        messages.extend(page.data)
        if not page.has_more or not page.last_id:
            return messages
        cursor = page.last_id


def chain_cursor(store: Store, thread_id: str) -> str | None:
    """The id of the thread's newest message: where the next chained request starts."""
    page = store.list("message", parent_id=thread_id, order="desc", limit=1)
    return page.first_id


class History:
    """Builds the ``input`` (and ``previous_response_id``) for a run's next response."""

    def __init__(self, store: Store, thread_id: str, mode: str) -> None:
        self.store = store
        self.thread_id = thread_id
        self.mode = mode

    def input_for(self, continuation: JSON | None) -> tuple[str | None, list[JSON]]:
        if self.mode != "chain":
            return self.replay_input(continuation)
        if continuation is not None:
            if not continuation.get("response_id"):
                return self.replay_input(continuation)
            calls = continuation["calls"]
            outputs = continuation["outputs"]
            return continuation["response_id"], [
                {"type": "function_call_output", "call_id": c["id"], "output": outputs[c["id"]]}
                for c in calls
            ]
        record = self.store.get("thread", self.thread_id)
        meta = record.meta if record else {}
        previous = meta.get("last_response_id")
        if not previous:
            return self.replay_input(None)
        new = _all_messages(self.store, self.thread_id, after=meta.get("chain_cursor"))
        return previous, [message_input(m) for m in new]

    def replay_input(self, continuation: JSON | None) -> tuple[None, list[JSON]]:
        items = [message_input(m) for m in _all_messages(self.store, self.thread_id)]
        if continuation is not None:
            for past in continuation.get("rounds", []):
                items += function_call_items(past["calls"], past["outputs"])
            items += function_call_items(continuation["calls"], continuation["outputs"])
        return None, items
