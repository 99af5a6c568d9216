"""Keys and tenants: who may call the proxy, and which objects each key may see.

An object belongs to the key that created it: its store record's ``meta["tenant"]`` is the
sha256 hex of that key (never the key). Messages, runs and steps belong to their thread. An
object of another tenant, or one created outside the proxy (no tenant), is answered as the
Assistant API answers an unknown id: HTTP 400 ``InvalidParameter``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from compat._config import current_settings
from compat.backends import CallOptions, get_backend
from compat.backends.responses.offload import on_loop_or_off
from compat.backends.responses.turns import take_turn
from compat.serve.wire import ApiError
from compat.store import Record, Store
from compat.store.memory import MemoryStore

__all__ = ["Tenants", "allowed_keys", "bearer_key", "tenant_of"]

_T = TypeVar("_T")
_P = ParamSpec("_P")


def tenant_of(key: str) -> str:
    """The one-way name under which a key's objects are stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def bearer_key(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header, or None."""
    if not authorization:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def allowed_keys(environ: dict[str, str] | None = None) -> frozenset[str] | None:
    """``COMPAT_SERVE_KEYS`` (comma-separated) and ``COMPAT_SERVE_KEYS_FILE`` (one a line), or
    None when neither is set (any key may use the proxy)."""
    env = os.environ if environ is None else environ
    inline = env.get("COMPAT_SERVE_KEYS")
    path = env.get("COMPAT_SERVE_KEYS_FILE")
    if inline is None and path is None:
        return None
    keys = {k.strip() for k in (inline or "").split(",")}
    if path:
        keys |= {line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()}
    keys.discard("")
    return frozenset(keys)


class Tenants:
    """Tenant records in the store compat's ``responses`` backend uses (the same instance).

    The lookups are coroutines, run like ``compat.aio``'s own store calls (``offload``): in the
    loop's turn on the in-memory store, and on SQLite when its write lock is free at once; else
    off the event loop in the store pool.
    """

    def __init__(self) -> None:
        settings = current_settings()
        store_of = getattr(get_backend(settings), "store", None)
        if store_of is None:
            raise TypeError("compat serve needs the responses backend (COMPAT_BACKEND=responses)")
        self.store: Store = store_of(CallOptions(settings))
        self._inline = isinstance(self.store, MemoryStore)

    async def _call(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        if self._inline:
            await take_turn()
            return fn(*args, **kwargs)
        return await on_loop_or_off(self.store, fn, *args, **kwargs)

    async def claim(self, kind: str, object_id: str, tenant: str) -> None:
        """Mark a new assistant or thread as the tenant's."""
        await self._call(self._claim, kind, object_id, tenant)

    async def owned(self, kind: str, object_ids: list[str], tenant: str) -> set[str]:
        """Which of these objects exist and are the tenant's (one store call for them all)."""
        return await self._call(self._owned, kind, object_ids, tenant)

    async def check(self, kind: str, object_id: str, tenant: str) -> None:
        """Raise the API's not-found answer unless the object exists and is the tenant's."""
        if not await self.owned(kind, [object_id], tenant):
            raise ApiError.not_found(kind)

    def _claim(self, kind: str, object_id: str, tenant: str) -> None:
        self.store.update(kind, object_id, lambda r: Record(r.data, {**r.meta, "tenant": tenant}))  # type: ignore[arg-type]

    def _owned(self, kind: str, object_ids: list[str], tenant: str) -> set[str]:
        mine = set()
        for object_id in object_ids:
            record = self.store.get(kind, object_id)  # type: ignore[arg-type]
            if record is not None and record.meta.get("tenant") == tenant:
                mine.add(object_id)
        return mine
