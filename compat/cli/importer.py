"""Copy Assistant-API objects into compat's store, keeping their ids (``python -m compat import``).

The source is anything with the assistants backend's read methods (``retrieve_assistant``,
``list_assistants``, ``retrieve_thread``, ``list_messages``, ``list_runs``, ``list_steps``), so
the import reads the live API exactly as ``COMPAT_BACKEND=assistants`` would (key and base URL
resolved by compat) and never writes there. Records are shaped as the responses backend stores
its own: a thread's meta has ``last_response_id: None`` (its history is replayed: no Responses
exist for it) and ``active_run_id: None``; a run that was still active on the source is stored
``expired`` so it never holds the thread.

Resumable: a thread is stored first with ``meta["imported"] = "partial"``, then its messages, runs
and steps (each put only if absent), and marked ``"complete"`` last. A complete thread is skipped
next time; a partial one is finished. Assistants already in the store are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from compat import lifecycle
from compat.store import Kind, Store

__all__ = [
    "IMPORTED_MID_RUN",
    "ImportFailed",
    "Importer",
    "Source",
    "Tally",
    "clean",
    "run_record",
    "thread_meta",
]

JSON = dict[str, Any]

#: Reply fields that are not part of the object (dashscope adds them to every reply).
_REPLY_FIELDS = ("status_code", "request_id", "code", "message")
#: The ``last_error`` of a run that was still active when it was imported.
IMPORTED_MID_RUN = {
    "code": "imported_mid_run",
    "message": "This run was still active on the Assistant API when it was imported into "
    "compat's store; it cannot continue here.",
}


class Source(Protocol):
    """The read side of the assistants backend, with options bound."""

    def retrieve_assistant(self, assistant_id: str) -> JSON: ...
    def list_assistants(self, query: JSON) -> JSON: ...
    def retrieve_thread(self, thread_id: str) -> JSON: ...
    def list_messages(self, thread_id: str, query: JSON) -> JSON: ...
    def list_runs(self, thread_id: str, query: JSON) -> JSON: ...
    def list_steps(self, thread_id: str, run_id: str, query: JSON) -> JSON: ...


class ImportFailed(Exception):
    """The source answered one object with an error (its message says which and why)."""


@dataclass
class Tally:
    """What an import did: records added and already present, per kind; failures by id."""

    added: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def count(self, kind: str, added: bool) -> None:
        bucket = self.added if added else self.present
        bucket[kind] = bucket.get(kind, 0) + 1

    def summary(self, dry_run: bool = False) -> str:
        """One line: ``import: added 1 assistant, 2 threads, ...; 0 already present; 1 failed``."""
        verb = "would add" if dry_run else "added"
        added = ", ".join(f"{n} {k}{'' if n == 1 else 's'}" for k, n in self.added.items())
        present = sum(self.present.values())
        return (
            f"import: {verb} {added or 'nothing'}; {present} already present; "
            f"{len(self.failed)} failed"
        )


def clean(reply: JSON) -> JSON:
    """The object of a reply, without the reply's own fields."""
    return {k: v for k, v in reply.items() if k not in _REPLY_FIELDS}


def thread_meta(imported: str) -> JSON:
    """The meta of an imported thread (history replayed: no response ids exist for it)."""
    return {"last_response_id": None, "active_run_id": None, "imported": imported}


def run_record(run: JSON) -> JSON:
    """A run as stored: terminal; a run still active on the source becomes ``expired``."""
    data = dict(run)
    if data.get("status") not in lifecycle.TERMINAL:
        data["status"] = "expired"
        data["required_action"] = None
        data["last_error"] = dict(IMPORTED_MID_RUN)
    return data


def _checked(reply: JSON, what: str) -> JSON:
    if reply.get("status_code", 200) != 200:
        raise ImportFailed(
            f"{what}: HTTP {reply.get('status_code')} {reply.get('code')}: {reply.get('message')}"
        )
    return reply


def _pages(fetch: Callable[[JSON], JSON], what: str) -> Iterator[JSON]:
    """Every item of a cursor-paginated list, oldest first."""
    after: str | None = None
    while True:
        query: JSON = {"limit": 100, "order": "asc"}
        if after is not None:
            query["after"] = after
        page = _checked(fetch(query), what)
        data = page.get("data") or []
        yield from data
        if not page.get("has_more") or not data:
            return
        after = data[-1]["id"]


class Importer:
    """Copies assistants and threads from a ``Source`` into a ``Store``."""

    def __init__(self, source: Source, store: Store) -> None:
        self.source = source
        self.store = store
        self.tally = Tally()

    def _put(self, kind: Kind, data: JSON, meta: JSON | None = None) -> None:
        """Store ``data`` unless a record with its id exists."""
        added = self.store.get(kind, data["id"]) is None
        if added:
            self.store.put(kind, data, meta if meta is not None else {})
        self.tally.count(kind, added)

    def all_assistant_ids(self) -> list[str]:
        """Every assistant the source lists."""
        return [a["id"] for a in _pages(self.source.list_assistants, "listing assistants")]

    def assistant(self, assistant_id: str) -> None:
        """Copy one assistant (kept as it is if already stored)."""
        if self.store.get("assistant", assistant_id) is not None:
            self.tally.count("assistant", False)
            return
        reply = self.source.retrieve_assistant(assistant_id)
        self._put("assistant", clean(_checked(reply, f"assistant {assistant_id}")))

    def thread(self, thread_id: str) -> None:
        """Copy one thread with its messages, runs, steps and the assistants its runs name."""
        existing = self.store.get("thread", thread_id)
        if existing is not None and existing.meta.get("imported") != "partial":
            self.tally.count("thread", False)
            return
        thread = clean(_checked(self.source.retrieve_thread(thread_id), f"thread {thread_id}"))
        if existing is None:
            self.store.put("thread", thread, thread_meta("partial"))
        what = f"thread {thread_id}"
        for message in _pages(lambda q: self.source.list_messages(thread_id, q), what):
            self._put("message", message)
        assistants: list[str] = []
        for run in _pages(lambda q: self.source.list_runs(thread_id, q), what):
            self._put("run", run_record(run), {"imported": True, "response_ids": []})
            for step in _pages(partial(self.source.list_steps, thread_id, run["id"]), what):
                self._put("step", step)
            if run.get("assistant_id") and run["assistant_id"] not in assistants:
                assistants.append(run["assistant_id"])
        for assistant_id in assistants:
            try:
                self.assistant(assistant_id)
            except ImportFailed as exc:  # deleted since: the thread is still worth having
                self.tally.failed[assistant_id] = str(exc)
        self.store.update(
            "thread", thread_id, lambda r: type(r)(r.data, dict(r.meta, imported="complete"))
        )
        self.tally.count("thread", True)
