"""The store seam: records, pages, the `Store` protocol, and helpers its implementations share."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, runtime_checkable

from compat import lifecycle
from compat.errors import StoreError

__all__ = [
    "KINDS",
    "MAX_LIMIT",
    "Kind",
    "Page",
    "Record",
    "RunGone",
    "Store",
    "StoreError",
    "Tx",
    "lower_error",
    "store_errors",
    "transition",
]

Kind = Literal["assistant", "thread", "message", "run", "step"]
KINDS: tuple[Kind, ...] = ("assistant", "thread", "message", "run", "step")

# The `data` field that names a record's parent. Assistants and threads have none.
PARENT_FIELD: dict[str, str] = {"message": "thread_id", "run": "thread_id", "step": "run_id"}

MAX_LIMIT = 100


@dataclass(frozen=True)
class Record:
    """One stored object: `data` is the public Assistant-API dict, `meta` the backend's own."""

    data: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """One page of a cursor-paginated list, shaped like the Assistant API's list object."""

    data: list[dict[str, Any]]
    has_more: bool
    first_id: str | None
    last_id: str | None


class Tx(Protocol):
    """One open transaction: reads see, and writes join, one atomic unit of work.

    SQLite takes its write lock at the start (``BEGIN IMMEDIATE``); PostgreSQL locks the rows it
    reads (``SELECT ... FOR UPDATE``). Keep the work short and free of network I/O.
    """

    def get(self, kind: Kind, id: str) -> Record | None:
        """The record, or None."""

    def status(self, kind: Kind, id: str) -> str | None:
        """The record's ``data["status"]`` (None: no such record, or no status), read without
        decoding the record, and locked as ``get`` locks it: a long message costs no copy.
        """

    def put(self, kind: Kind, data: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        """As ``Store.put``, inside the transaction."""

    def delete(self, kind: Kind, id: str) -> bool:
        """As ``Store.delete``, inside the transaction."""

    def children(self, kind: Kind, parent_id: str) -> list[Record]:
        """The records of ``kind`` under ``parent_id``, oldest first."""

    def now_ms(self) -> int:
        """The store's clock in ms (the database's, where there is one): leases use it."""


@runtime_checkable
class Store(Protocol):
    """Where assistants, threads, messages, runs and steps live for the Responses backend.

    Every method is safe to call from many threads at once. Returned dicts are the caller's
    to mutate; the store never hands out its own state.
    """

    def put(self, kind: Kind, data: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        """Insert or replace by `data["id"]`; `meta=None` keeps the stored meta ({} if new).

        A replaced record keeps its original position among records with equal `created_at`.
        """

    def put_many(self, items: Sequence[tuple[Kind, dict[str, Any], dict[str, Any] | None]]) -> None:
        """`put` each item, all in one transaction: either every item is stored or none is."""

    def get(self, kind: Kind, id: str) -> Record | None:
        """The record, or None."""

    def delete(self, kind: Kind, id: str) -> bool:
        """Delete a record and what hangs off it; True if the record existed.

        A thread takes its messages, runs and their steps with it; a run takes its steps.
        """

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
        """Records of `kind` (under `parent_id` if given) with the Assistant API's pagination.

        Ordered by `created_at`, then insertion order. `after`/`before` are record ids: the page
        holds what comes after `after` / just before `before` in the chosen order. `has_more`
        says whether more lie beyond the page in the direction of travel (towards the start
        when only `before` is given). An id that is not in the list gives an empty page.
        `limit` is clamped to 1..100; `order` other than "asc"/"desc" raises ValueError.
        """

    def update(self, kind: Kind, id: str, fn: Callable[[Record], Record | None]) -> Record | None:
        """Atomically replace a record with `fn(record)`; return what is stored, None if unknown.

        `fn` runs under the store's write lock (across processes for SQLite): keep it short,
        and do not call the store from it. If it returns None the record stays as it was.
        """

    def transaction(self) -> AbstractContextManager[Tx]:
        """A transaction: committed when the block ends, rolled back if it raises."""

    def transition(
        self,
        run_id: str,
        trigger: str,
        changes: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Record:
        """Apply one lifecycle move to a stored run, atomically (see ``transition``)."""

    def now_ms(self) -> int:
        """The store's clock in ms, outside a transaction (PostgreSQL: the database's, cached).

        Meant for lease pre-checks outside a transaction, so that hosts whose clocks are skewed
        still agree on when a lease lapsed.
        """

    def close(self) -> None:
        """Release connections; later calls raise StoreError. Calling it twice is fine."""


def lower_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of a database library a store uses (sqlite3, psycopg).

    Every ``sqlite3`` exception, and every ``psycopg`` one (its ``errors`` module's hundreds of
    server errors, the pool's timeouts) but ``psycopg.Rollback``, which is not a failure: code
    raises it to roll a block back. Modules are looked up, never imported: psycopg is optional.
    """
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, (sqlite3.Error, sqlite3.Warning)):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, (psycopg.Error, psycopg.Warning))


@contextlib.contextmanager
def store_errors(where: str) -> Iterator[None]:
    """The one place a database library's exceptions become ``StoreError`` (``from`` the original).

    ``where`` names the store (a path, or a URI without its password) at the start of the
    message; the library's own text follows on one line. Anything else passes through: lifecycle
    refusals, ``RunGone``, the caller's own exceptions.
    """
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        if not lower_error(exc):
            raise
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise StoreError(f"{where}: {reason}") from exc


class RunGone(LookupError):
    """The run is not in the store (never stored, or its thread was deleted)."""


#: Run fields a driver never writes: the user owns them (``Runs.update``).
_USER_FIELDS = frozenset({"metadata"})


def transition(
    tx: Tx,
    run_id: str,
    trigger: str,
    changes: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Record:
    """Move the stored run by ``trigger`` (``compat.lifecycle``'s table) and return it.

    The move is checked against the run as stored now, never against a caller's snapshot;
    ``changes`` (fields other than the user's ``metadata``) and ``meta`` are merged onto it.
    Raises ``lifecycle.IllegalMove`` (nothing written) or ``RunGone``.
    """
    record = tx.get("run", run_id)
    if record is None:
        raise RunGone(run_id)
    data = dict(record.data)
    status = data["status"]
    if changes:
        data.update({k: v for k, v in changes.items() if k not in _USER_FIELDS})
    data["status"] = status  # the move decides it, from what is stored
    data.update(lifecycle.moved_fields(data, trigger, tx.now_ms()))
    new = Record(data, dict(record.meta, **meta) if meta else record.meta)
    tx.put("run", new.data, new.meta)
    return new


def apply_update(
    tx: Tx, kind: Kind, id: str, fn: Callable[[Record], Record | None]
) -> Record | None:
    """``Store.update`` inside a transaction."""
    current = tx.get(kind, id)
    if current is None:
        return None
    new = fn(current)
    if new is None:
        return current
    if new.data.get("id") != id:
        raise ValueError(f"update of {kind} {id} returned a record with id {new.data.get('id')}")
    tx.put(kind, new.data, new.meta)
    return new


class TransitionMixin:
    """``Store.transition`` for stores that have ``transaction()``, and a local ``now_ms``."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    if TYPE_CHECKING:  # every store defines it; declared here for the methods above

        def transaction(self) -> AbstractContextManager[Tx]: ...

    def transition(
        self,
        run_id: str,
        trigger: str,
        changes: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Record:
        with self.transaction() as tx:
            return transition(tx, run_id, trigger, changes, meta)


def check_kind(kind: str) -> None:
    """Raise ValueError for anything but one of KINDS."""
    if kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {', '.join(KINDS)}")


def dumps(value: dict[str, Any]) -> str:
    """The JSON text both stores keep: compact, non-ASCII kept as is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def decode(data: str | bytes | bytearray, meta: str | bytes | bytearray) -> Record:
    """A fresh `Record` from stored JSON text (or its UTF-8)."""
    return Record(json.loads(data), json.loads(meta))


class Row(NamedTuple):
    """A record ready to store: index fields pulled out, dicts serialised."""

    kind: Kind
    id: str
    parent_id: str | None
    created_at: int
    data: str
    meta: str | None  # None keeps the stored meta


def encode(kind: Kind, data: dict[str, Any], meta: dict[str, Any] | None) -> Row:
    """Validate the fields the store indexes on and serialise the record."""
    rid, parent_id, created_at = index_fields(kind, data)
    return Row(kind, rid, parent_id, created_at, dumps(data), None if meta is None else dumps(meta))


def index_fields(kind: Kind, data: dict[str, Any]) -> tuple[str, str | None, int]:
    """The fields the store indexes a record on (id, parent id, created_at), validated."""
    check_kind(kind)
    rid = data.get("id")
    if not isinstance(rid, str) or not rid:
        raise ValueError(f"{kind} data needs a non-empty string 'id', got {rid!r}")
    created_at = data.get("created_at")
    if not isinstance(created_at, int) or isinstance(created_at, bool):
        raise ValueError(f"{kind} {rid} needs an integer 'created_at' (ms), got {created_at!r}")
    parent_id: str | None = None
    parent_field = PARENT_FIELD.get(kind)
    if parent_field is not None:
        parent_id = data.get(parent_field)
        if not isinstance(parent_id, str) or not parent_id:
            raise ValueError(f"{kind} {rid} needs a string {parent_field!r}, got {parent_id!r}")
    return rid, parent_id, created_at


@dataclass(frozen=True)
class Window:
    """A validated list request: which way the page is read and how long it is."""

    descending: bool
    # Only `before` given: read from the cursor towards the start, then flip the page back.
    backward: bool
    limit: int

    @property
    def reads_descending(self) -> bool:
        """Whether records are fetched newest first."""
        return self.descending != self.backward

    def page(self, texts: Sequence[str]) -> Page:
        """Build the page from up to `limit + 1` JSON texts in reading order."""
        has_more = len(texts) > self.limit
        data = [json.loads(text) for text in texts[: self.limit]]
        if self.backward:
            data.reverse()
        if not data:
            return Page([], False, None, None)
        return Page(data, has_more, data[0]["id"], data[-1]["id"])


def window(order: str, limit: int, after: str | None, before: str | None) -> Window:
    """Check `order`, clamp `limit`, and work out the reading direction."""
    if order not in ("asc", "desc"):
        raise ValueError(f"order must be 'asc' or 'desc', got {order!r}")
    return Window(
        descending=order == "desc",
        backward=before is not None and after is None,
        limit=max(1, min(MAX_LIMIT, limit)),
    )
