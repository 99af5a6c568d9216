"""In-memory store: the SQLite store's semantics without a file (tests, COMPAT_STORE=memory)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .base import (
    KINDS,
    PARENT_FIELD,
    Kind,
    Page,
    Record,
    Row,
    StoreError,
    check_kind,
    decode,
    encode,
    window,
)

__all__ = ["MemoryStore"]


class _Entry(NamedTuple):
    seq: int
    created_at: int
    parent_id: str | None
    # Kept as JSON text, as SQLite keeps it: every read decodes a fresh copy, which is cheaper
    # than copy.deepcopy, and values that would not survive SQLite fail here too.
    data: str
    meta: str


class MemoryStore:
    """A `Store` in dicts behind one lock; nothing survives the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: dict[str, dict[str, _Entry]] = {kind: {} for kind in KINDS}
        self._seq = itertools.count(1)
        self._closed = False

    def __repr__(self) -> str:
        return "MemoryStore()"

    def put(self, kind: Kind, data: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        self.put_many([(kind, data, meta)])

    def put_many(self, items: Sequence[tuple[Kind, dict[str, Any], dict[str, Any] | None]]) -> None:
        # Encoding everything first is what makes the batch all-or-nothing: writing can't fail.
        rows = [encode(kind, data, meta) for kind, data, meta in items]
        with self._lock:
            self._check_open()
            for row in rows:
                self._write(row)

    def get(self, kind: Kind, id: str) -> Record | None:
        check_kind(kind)
        with self._lock:
            self._check_open()
            entry = self._tables[kind].get(id)
        return None if entry is None else decode(entry.data, entry.meta)

    def delete(self, kind: Kind, id: str) -> bool:
        check_kind(kind)
        with self._lock:
            self._check_open()
            if kind == "thread":
                runs = {rid for rid, e in self._tables["run"].items() if e.parent_id == id}
                self._drop_children("step", runs)
                self._drop_children("message", {id})
                self._drop_children("run", {id})
            elif kind == "run":
                self._drop_children("step", {id})
            return self._tables[kind].pop(id, None) is not None

    def list(
        self,
        kind: Kind,
        *,
        parent_id: str | None = None,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page:
        check_kind(kind)
        win = window(order, limit, after, before)
        scoped = parent_id is not None and kind in PARENT_FIELD
        with self._lock:
            self._check_open()
            entries = [
                (e.created_at, e.seq, rid, e.data)
                for rid, e in self._tables[kind].items()
                if not scoped or e.parent_id == parent_id
            ]
        entries.sort(reverse=win.descending)
        position = {rid: i for i, (_, _, rid, _) in enumerate(entries)}
        start, stop = 0, len(entries)
        if after is not None:
            if after not in position:
                return win.page([])
            start = position[after] + 1
        if before is not None:
            if before not in position:
                return win.page([])
            stop = position[before]
        chosen = entries[start:stop]
        if win.backward:
            chosen.reverse()
        return win.page([text for _, _, _, text in chosen[: win.limit + 1]])

    def update(self, kind: Kind, id: str, fn: Callable[[Record], Record | None]) -> Record | None:
        check_kind(kind)
        with self._lock:
            self._check_open()
            entry = self._tables[kind].get(id)
            if entry is None:
                return None
            current = decode(entry.data, entry.meta)
            new = fn(current)
            if new is None:
                return current
            row = encode(kind, new.data, new.meta)
            if row.id != id:
                raise ValueError(f"update of {kind} {id} returned a record with id {row.id}")
            self._write(row)
            return new

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for table in self._tables.values():
                table.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self!r} is closed")

    def _write(self, row: Row) -> None:
        table = self._tables[row.kind]
        old = table.get(row.id)
        seq = next(self._seq) if old is None else old.seq
        meta = row.meta if row.meta is not None else "{}" if old is None else old.meta
        table[row.id] = _Entry(seq, row.created_at, row.parent_id, row.data, meta)

    def _drop_children(self, kind: str, parents: set[str]) -> None:
        table = self._tables[kind]
        for rid in [rid for rid, e in table.items() if e.parent_id in parents]:
            del table[rid]
