"""Instructions reach the model exactly once per request, on both backends and in both
``COMPAT_INSTRUCTIONS`` modes, also on a Responses server that ignores the ``instructions`` field.

The emulator records what "the model" saw at each turn (``Emulator.conversations``): on the
Assistant side the run's instructions, on the Responses side the ``instructions`` field (unless
the server ignores it) joined with every system message of the request and of its chain.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

import compat
from compat.testing import Emulator

CHANGING = [
    {"additional_instructions": "Answer in French."},
    {"instructions": "Be verbose."},
    {},
    {},
]
SEEN = ["Be brief.\n\nAnswer in French.", "Be verbose.", "Be brief.", "Be brief."]


def four_runs(api: Any, emu: Emulator) -> list[str]:
    """Four runs on one thread whose instructions change, then stay: what the model saw."""
    assistant = api.Assistants.create(model="qwen-plus", instructions="Be brief.")
    thread = api.Threads.create(messages=[{"role": "user", "content": "Hello"}])
    seen = []
    for n, extra in enumerate(CHANGING):
        if n:
            api.Messages.create(thread.id, content=f"question {n}")
        run = api.Runs.create(thread.id, assistant_id=assistant.id, **extra)
        assert api.Runs.wait(run.id, thread_id=thread.id).status == "completed"
        seen.append(emu.conversations[-1].instructions)
    return seen


def test_every_run_is_seen_with_its_own_instructions(
    apis: dict[str, Any], compat_emulator: Emulator
) -> None:
    assert four_runs(apis["dashscope"], compat_emulator) == SEEN
    compat_emulator.reset()
    assert four_runs(apis["compat"], compat_emulator) == SEEN


responses_only = pytest.mark.skipif(
    os.environ.get("COMPAT_BACKEND", "responses") != "responses",
    reason="responses backend only",
)


@responses_only
@pytest.mark.parametrize("history", ["chain", "replay"])
@pytest.mark.parametrize(
    ("mode", "server_ignores"), [("parameter", False), ("message", False), ("message", True)]
)
def test_both_modes_deliver_instructions_once(
    compat_emulator: Emulator, history: str, mode: str, server_ignores: bool
) -> None:
    compat.configure(backend="responses", store="memory", history=history, instructions=mode)
    compat_emulator.ignore_instructions = server_ignores
    try:
        assert four_runs(compat, compat_emulator) == SEEN
        bodies = [r.json for r in compat_emulator.requests if r.path.endswith("/responses")]
        for body in bodies:
            system = [i for i in body["input"] if i.get("role") == "system"]
            if mode == "parameter":
                assert system == []
                assert body["instructions"]
            else:
                assert "instructions" not in body
                # A chained request carries no system message: the chain has the same one.
                assert len(system) == (0 if "previous_response_id" in body else 1)
        if history == "chain":
            # Runs 1-3 change the instructions; run 4 keeps run 3's and continues its chain.
            chained = ["previous_response_id" in body for body in bodies]
            assert chained == (
                [False, True, True, True] if mode == "parameter" else [False, False, False, True]
            )
    finally:
        compat.configure(reset=True)


@responses_only
def test_a_server_that_ignores_the_field_loses_parameter_instructions(
    compat_emulator: Emulator,
) -> None:
    # Why COMPAT_INSTRUCTIONS=message exists: nothing in the answer says they were dropped.
    compat.configure(backend="responses", store="memory", instructions="parameter")
    compat_emulator.ignore_instructions = True
    try:
        assert four_runs(compat, compat_emulator) == ["", "", "", ""]
    finally:
        compat.configure(reset=True)


def test_an_unknown_instructions_mode_is_a_configuration_error() -> None:
    with pytest.raises(compat.errors.ConfigurationError, match="instructions mode 'system'"):
        compat.configure(instructions="system")
