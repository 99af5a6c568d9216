"""In-memory store: the SQLite store's semantics without a file (tests, COMPAT_STORE=memory)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from .base import (
    KINDS,
    PARENT_FIELD,
    Kind,
    Page,
    Record,
    Row,
    StoreError,
    TransitionMixin,
    apply_update,
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
    #: ``data["status"]`` if it is a string (``Tx.status`` reads it without decoding ``data``)
    status: str | None


class _MemoryTx:
    """A ``Tx`` on a ``MemoryStore`` whose lock is held; writes are staged until commit."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def get(self, kind: Kind, id: str) -> Record | None:
        check_kind(kind)
        entry = self.store._tables[kind].get(id)
        return None if entry is None else decode(entry.data, entry.meta)

    def status(self, kind: Kind, id: str) -> str | None:
        check_kind(kind)
        entry = self.store._tables[kind].get(id)
        return None if entry is None else entry.status

    def put(self, kind: Kind, data: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        # Applied at once (reads in the transaction see it); undone if the block raises.
        row = encode(kind, data, meta)
        self.store._undo.append(self.store._snapshot(row.kind, row.id))
        self.store._write(row, _status(data))

    def delete(self, kind: Kind, id: str) -> bool:
        check_kind(kind)
        self.store._undo.append(("all", self.store._copy_tables()))
        return self.store._delete(kind, id)

    def children(self, kind: Kind, parent_id: str) -> list[Record]:
        check_kind(kind)
        entries = sorted(
            (e for e in self.store._tables[kind].values() if e.parent_id == parent_id),
            key=lambda e: (e.created_at, e.seq),
        )
        return [decode(e.data, e.meta) for e in entries]

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class MemoryStore(TransitionMixin):
    """A `Store` in dicts behind one lock; nothing survives the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: dict[str, dict[str, _Entry]] = {kind: {} for kind in KINDS}
        self._seq = itertools.count(1)
        self._closed = False
        self._undo: list[Any] = []  # how to roll back the open transaction

    def __repr__(self) -> str:
        return "MemoryStore()"

    def put(self, kind: Kind, data: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        self.put_many([(kind, data, meta)])

    def put_many(self, items: Sequence[tuple[Kind, dict[str, Any], dict[str, Any] | None]]) -> None:
        # Encoding everything first is what makes the batch all-or-nothing: writing can't fail.
        rows = [(encode(kind, data, meta), _status(data)) for kind, data, meta in items]
        with self._lock:
            self._check_open()
            for row, status in rows:
                self._write(row, status)

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
            return self._delete(kind, id)

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
        with self.transaction() as tx:
            return apply_update(tx, kind, id, fn)

    @contextmanager
    def transaction(self) -> Iterator[_MemoryTx]:
        with self._lock:
            self._check_open()
            self._undo = []
            try:
                yield _MemoryTx(self)
            except BaseException:
                self._rollback()
                raise
            finally:
                self._undo = []

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for table in self._tables.values():
                table.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self!r} is closed")

    def _write(self, row: Row, status: str | None) -> None:
        table = self._tables[row.kind]
        old = table.get(row.id)
        seq = next(self._seq) if old is None else old.seq
        meta = row.meta if row.meta is not None else "{}" if old is None else old.meta
        table[row.id] = _Entry(seq, row.created_at, row.parent_id, row.data, meta, status)

    def _delete(self, kind: Kind, id: str) -> bool:
        if kind == "thread":
            runs = {rid for rid, e in self._tables["run"].items() if e.parent_id == id}
            self._drop_children("step", runs)
            self._drop_children("message", {id})
            self._drop_children("run", {id})
        elif kind == "run":
            self._drop_children("step", {id})
        return self._tables[kind].pop(id, None) is not None

    def _snapshot(self, kind: str, id: str) -> tuple[str, str, str, _Entry | None]:
        return ("one", kind, id, self._tables[kind].get(id))

    def _copy_tables(self) -> dict[str, dict[str, _Entry]]:
        return {kind: dict(table) for kind, table in self._tables.items()}

    def _rollback(self) -> None:
        for undo in reversed(self._undo):
            if undo[0] == "all":
                self._tables = undo[1]
                continue
            _, kind, id, entry = undo
            if entry is None:
                self._tables[kind].pop(id, None)
            else:
                self._tables[kind][id] = entry

    def _drop_children(self, kind: str, parents: set[str]) -> None:
        table = self._tables[kind]
        for rid in [rid for rid, e in table.items() if e.parent_id in parents]:
            del table[rid]


def _status(data: dict[str, Any]) -> str | None:
    status = data.get("status")
    return status if isinstance(status, str) else None
