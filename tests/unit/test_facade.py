"""The facade mirrors dashscope 2.0.2's classes: names, signatures, argument errors."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import compat
from compat import errors

CLASSES = ("Assistants", "Threads", "Messages", "Runs", "Steps")
# dashscope methods compat deliberately does not offer, with the reason.
NOT_OFFERED = {
    # CancelMixin leftover: POSTs assistants/{id}/cancel, an endpoint the API does not have.
    ("Assistants", "cancel"),
}


def _public_classmethods(cls: type) -> dict[str, Any]:
    return {
        name: getattr(cls, name)
        for name in dir(cls)
        if not name.startswith("_") and inspect.ismethod(getattr(cls, name))
    }


def _shape(method: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(method).parameters.values()]


@pytest.mark.parametrize("class_name", CLASSES)
def test_every_dashscope_classmethod_exists_with_the_same_signature(class_name: str) -> None:
    dashscope = pytest.importorskip("dashscope")
    theirs = _public_classmethods(getattr(dashscope, class_name))
    ours = _public_classmethods(getattr(compat, class_name))
    expected = {name for name in theirs if (class_name, name) not in NOT_OFFERED}
    assert set(ours) == expected
    for name in sorted(expected):
        assert _shape(ours[name]) == _shape(theirs[name]), f"{class_name}.{name}"


def test_the_facade_offers_the_methods_the_brief_names() -> None:
    expected = {
        "Assistants": {"create", "call", "retrieve", "get", "list", "update", "delete"},
        "Threads": {"create", "call", "retrieve", "get", "update", "delete", "create_and_run"},
        "Messages": {"create", "call", "retrieve", "get", "list", "update"},
        "Runs": {
            "create",
            "call",
            "create_thread_and_run",
            "retrieve",
            "get",
            "list",
            "update",
            "cancel",
            "submit_tool_outputs",
            "wait",
            "convert_stream_object",
        },
        "Steps": {"list", "retrieve", "get"},
    }
    for class_name, names in expected.items():
        assert set(_public_classmethods(getattr(compat, class_name))) == names


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: compat.Assistants.create(model=""), errors.ModelRequired, "Model is required!"),
        (lambda: compat.Assistants.retrieve(""), errors.ModelRequired, "assistant_id is required!"),
        (lambda: compat.Assistants.update(""), errors.ModelRequired, "assistant_id is required!"),
        (lambda: compat.Assistants.delete(""), errors.ModelRequired, "assistant_id is required!"),
        (lambda: compat.Assistants.list(limit=-1), errors.InvalidParameter, "limit should >= 0"),
        (lambda: compat.Threads.retrieve(""), errors.InputRequired, "thread_id is required!"),
        (lambda: compat.Threads.delete(""), errors.InputRequired, "thread_id is required!"),
        (
            lambda: compat.Threads.create_and_run(assistant_id=""),
            errors.InputRequired,
            "assistant_id is required",
        ),
        (
            lambda: compat.Messages.create("thread_1", content=""),
            errors.InputRequired,
            "thread_id and content are required!",
        ),
        (
            lambda: compat.Messages.list("thread_1", limit=-5),
            errors.InvalidParameter,
            "limit should >= 0",
        ),
        (
            lambda: compat.Runs.create("thread_1", assistant_id=""),
            errors.InputRequired,
            "thread_id and assistant_id is required",
        ),
        (
            lambda: compat.Runs.submit_tool_outputs("run_1", thread_id="t", tool_outputs=[]),
            errors.InputRequired,
            "tool_outputs is required!",
        ),
        (
            lambda: compat.Runs.wait("", thread_id="t"),
            errors.InputRequired,
            "run_id and thread_id are required!",
        ),
        (lambda: compat.Steps.list("", thread_id="t"), errors.InputRequired, "run_id is required!"),
        (
            lambda: compat.Steps.retrieve("s", thread_id="t", run_id=""),
            errors.InputRequired,
            "thread_id, run_id and step_id are required!",
        ),
    ],
)
def test_argument_errors_raise_dashscopes_exception_names(
    call: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == message
    assert isinstance(info.value, errors.DashScopeException)
    assert type(info.value).__name__ == error.__name__


def test_public_names_are_complete() -> None:
    assert set(compat.__all__) == {
        "Assistants",
        "Messages",
        "Runs",
        "Settings",
        "Steps",
        "Threads",
        "__version__",
        "configure",
        "current_settings",
    }
    for name in compat.__all__:
        assert hasattr(compat, name)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.CompatError)
