"""What compat does when the interpreter exits, registered once when compat is imported.

``atexit`` calls its handlers last-registered first, and a handler registered while they run
(a module first imported inside a user's exit handler) is not called at all before Python 3.12.
So compat registers one handler at import, before any handler of the program that imports it,
and modules add their work to it (``on_exit``). Once it has begun, ``exiting()`` is true: work
started later (from a handler registered before compat was imported) must finish in the
calling thread, as nothing will wait for a thread started then.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable

__all__ = ["exiting", "on_exit"]

_hooks: list[Callable[[], None]] = []
#: Called after every hook of ``_hooks``: what must outlive the work they finish (the stores).
_last_hooks: list[Callable[[], None]] = []
_state = {"exiting": False}


def on_exit(hook: Callable[[], None], *, last: bool = False) -> None:
    """Call ``hook`` at exit, after the hooks added before it (each at most once).

    ``last``: after every hook added without it, whenever either was added (a store closes its
    connections after the runs that write to it have finished).
    """
    hooks = _last_hooks if last else _hooks
    if hook not in hooks:
        hooks.append(hook)


def exiting() -> bool:
    """compat's exit handler has begun."""
    return _state["exiting"]


def _at_exit() -> None:
    _state["exiting"] = True
    for hook in list(_hooks):
        hook()
    for hook in list(_last_hooks):
        hook()


atexit.register(_at_exit)
