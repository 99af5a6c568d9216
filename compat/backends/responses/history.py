"""Thread history → Responses input (DESIGN decision 4).

``chain`` (default): send ``previous_response_id`` of the thread's last completed response plus
the messages that request did not include; ``replay``: resend the whole thread. A continuation
after ``submit_tool_outputs`` sends the function outputs (chain) or the thread plus every function
call of the run, each immediately followed by its output (replay; DashScope requires the adjacency).

The thread's ``chain_cursor`` is the newest message a chained run's first request was built from
(``Input.cursor``), stored when that run completes: a message created while the run was active
lies after it and goes with the next request, so no user message is lost or sent twice.
Messages a run wrote (they carry its ``run_id``) are never sent in chain mode: a completed run's
are in the chain already, and a cancelled or failed run's partial answer is not the model's word.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from compat.backends.responses.request import function_call_items, message_input
from compat.store import Store

__all__ = ["History", "Input"]

JSON = dict[str, Any]


class Input(NamedTuple):
    """One request's history: the chained response, the input items, the cursor they reach.

    ``cursor`` is the newest message when the input was built, or None when the request adds
    no messages (a chained continuation) and the run's cursor stands.
    """

    previous: str | None
    items: list[JSON]
    cursor: str | None


def _all_messages(store: Store, thread_id: str, after: str | None = None) -> list[JSON]:
    messages: list[JSON] = []
    cursor = after
    while True:
        page = store.list("message", parent_id=thread_id, order="asc", limit=100, after=cursor)
        messages.extend(page.data)
        if not page.has_more or not page.last_id:
            return messages
        cursor = page.last_id


class History:
    """Builds the ``input`` (and ``previous_response_id``) for a run's next response.

    ``system``: the run's instructions as a leading ``system`` message (``COMPAT_INSTRUCTIONS=
    message``), else None. Such a message stays in a response chain, so a chain is continued
    only by a run with the same instructions (``chain_instructions`` on the thread); a run with
    other instructions starts a new chain by replay, and the model sees its own instructions
    exactly once, never a previous run's.
    """

    def __init__(self, store: Store, thread_id: str, mode: str, system: str | None = None) -> None:
        self.store = store
        self.thread_id = thread_id
        self.mode = mode
        self.system = system or None

    def input_for(self, continuation: JSON | None, thread_meta: JSON | None = None) -> Input:
        """The next request's history; ``thread_meta``: the thread's meta if the caller read it
        (the chain's fields do not change while the run holds the thread), else it is read."""
        if self.mode != "chain":
            return self.replay_input(continuation)
        if continuation is not None:
            if not continuation.get("response_id"):
                return self.replay_input(continuation)
            calls = continuation["calls"]
            outputs = continuation["outputs"]
            items = [
                {"type": "function_call_output", "call_id": c["id"], "output": outputs[c["id"]]}
                for c in calls
            ]
            return Input(continuation["response_id"], items, None)
        meta = thread_meta
        if meta is None:
            record = self.store.get("thread", self.thread_id)
            meta = record.meta if record else {}
        previous = meta.get("last_response_id")
        if not previous or meta.get("chain_instructions") != self.system:
            return self.replay_input(None)
        cursor = meta.get("chain_cursor")
        new = _all_messages(self.store, self.thread_id, after=cursor)
        items = [message_input(m) for m in new if not m.get("run_id")]
        return Input(previous, items, new[-1]["id"] if new else cursor)

    def replay_input(self, continuation: JSON | None) -> Input:
        messages = _all_messages(self.store, self.thread_id)
        items = [message_input(m) for m in messages]
        if self.system:
            items.insert(0, {"role": "system", "content": self.system})
        if continuation is not None:
            for past in continuation.get("rounds", []):
                items += function_call_items(past["calls"], past["outputs"])
            items += function_call_items(continuation["calls"], continuation["outputs"])
        return Input(None, items, messages[-1]["id"] if messages else None)
