"""A loopback emulator of DashScope's Assistant and Responses APIs, for migration tests.

Start one, point the SDKs (or compat) at it, queue what "the model" should do, run your code::

    from compat.testing import Emulator, Scenario

    with Emulator() as emu:
        emu.queue(Scenario.code("print(2 ** 10)", "1024\\n", "Let me compute that."))
        env = emu.env()   # DASHSCOPE_HTTP_BASE_URL, COMPAT_RESPONSES_BASE_URL, DASHSCOPE_API_KEY
        ...

In pytest, the ``compat_emulator`` fixture (this package's plugin) does the same per test.
From a shell: ``python -m compat.testing -- python my_legacy_program.py``.
"""

from __future__ import annotations

from compat.testing.scenario import (
    CodeInterpreter,
    Conversation,
    Failure,
    FailureMode,
    FunctionCall,
    Item,
    Reasoning,
    Scenario,
    Search,
    Text,
    Turn,
    default_turn,
    estimate_usage,
)
from compat.testing.server import DEFAULT_API_KEY, Emulator, Request

__all__ = [
    "DEFAULT_API_KEY",
    "CodeInterpreter",
    "Conversation",
    "Emulator",
    "Failure",
    "FailureMode",
    "FunctionCall",
    "Item",
    "Reasoning",
    "Request",
    "Scenario",
    "Search",
    "Text",
    "Turn",
    "default_turn",
    "estimate_usage",
]
