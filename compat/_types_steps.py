"""Run steps (``RunStep``, its details and tool calls, ``RunStepDelta``) and the small objects
they share with runs: ``Function``, ``Usage``, ``LastError``. Public through ``compat.types``;
see its docstring for the conventions.
"""

from __future__ import annotations

from typing import Any

from compat._types_base import BaseObject, ListObject, by_type, each, object_if_truthy, to_object

__all__ = [
    "CodeInterpreter",
    "CodeToolCall",
    "Function",
    "FunctionToolCall",
    "LastError",
    "MessageCreation",
    "MessageCreationStepDetails",
    "RetrievalToolCall",
    "RunStep",
    "RunStepDelta",
    "RunStepDeltaContent",
    "RunStepList",
    "ToolCallsStepDetails",
    "Usage",
]


class Function(BaseObject):
    name: str
    arguments: str
    output: str | None = None


class Usage(BaseObject):
    completion_tokens: int
    prompt_tokens: int
    total_tokens: int
    input_tokens: int
    output_tokens: int


class LastError(BaseObject):
    code: str
    message: str


class MessageCreation(BaseObject):
    message_id: str


class MessageCreationStepDetails(BaseObject):
    _nested = {"message_creation": to_object(MessageCreation)}

    message_creation: MessageCreation
    type: str


class CodeInterpreter(BaseObject):
    """DashScope's shape: ``arguments`` (the code) and ``output`` (its result)."""

    # dashscope crashes on a non-empty outputs list; its items stay dicts here
    _absent = {"outputs": list}

    # Not defaults in dashscope; the seed reads them with getattr(..., '') while a call is
    # still streaming, so they always exist here.
    arguments: str | None = None
    output: str | None = None
    outputs: list[Any]
    input: str


class CodeToolCall(BaseObject):
    _nested = {"code_interpreter": to_object(CodeInterpreter)}
    _absent = {"code_interpreter": CodeInterpreter}

    id: str
    type: str
    code_interpreter: CodeInterpreter


class RetrievalToolCall(BaseObject):
    id: str
    type: str
    retrieval: Any


class FunctionToolCall(BaseObject):
    _nested = {"function": to_object(Function)}
    _absent = {"function": Function}

    id: str
    type: str
    function: Function


#: Other tool-call types (quark_search, text_to_image, web_search, ...) stay dicts, as in dashscope.
_tool_call = by_type(
    {"function": FunctionToolCall, "code_interpreter": CodeToolCall, "retrieval": RetrievalToolCall}
)


class ToolCallsStepDetails(BaseObject):
    # dashscope crashes on tool_calls=None; kept as None
    _nested = {"tool_calls": each(_tool_call)}
    _absent = {"tool_calls": list}

    tool_calls: list[Any]  # FunctionToolCall | CodeToolCall | RetrievalToolCall | dict
    type: str


_step_details = by_type(
    {"message_creation": MessageCreationStepDetails, "tool_calls": ToolCallsStepDetails}
)


class RunStepDeltaContent(BaseObject):
    _nested = {"step_details": _step_details}  # dashscope crashes on None; kept
    _absent = {"step_details": dict}

    step_details: Any  # MessageCreationStepDetails | ToolCallsStepDetails | dict | None


class RunStepDelta(BaseObject):
    _nested = {"delta": object_if_truthy(RunStepDeltaContent, empty_to_none=False)}

    status_code: int = 200  # only ever from a successful stream
    id: str
    object: str = "thread.run.step.delta"
    delta: RunStepDeltaContent | None = None


class RunStep(BaseObject):
    """A run step. Unlike ``Run``, ``usage`` is a ``Usage`` and ``last_error`` a ``LastError``."""

    _nested = {
        "step_details": _step_details,
        "usage": object_if_truthy(Usage, empty_to_none=False),
        "last_error": object_if_truthy(LastError, empty_to_none=True),
    }
    _absent = {"step_details": dict}

    status_code: int | None = None
    id: str
    assistant_id: str
    created_at: int
    object: str
    run_id: str
    status: str
    step_details: Any  # as RunStepDeltaContent.step_details
    thread_id: str
    type: str
    cancelled_at: int | None = None
    completed_at: int | None = None
    expired_at: int | None = None
    failed_at: int | None = None
    last_error: LastError | None = None
    metadata: dict[str, Any] | None = None
    usage: Usage | None = None


class RunStepList(ListObject):
    _nested = {"data": each(to_object(RunStep))}
    data: list[RunStep]
