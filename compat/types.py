"""DashScope-shaped objects (Run, RunStep, ThreadMessage, ...) built from Assistant-API wire dicts.

Mirrors the object model of ``dashscope`` 2.0.2 (``threads/thread_types.py``,
``assistants/assistant_types.py``): the same class and field names, the same defaults, the same
conversions of nested values. A field dashscope declares without a default raises
``AttributeError`` when the wire lacks it; one with a default reads as that default.

Where dashscope crashes on a value, these types keep it instead (each marked "dashscope crashes"
below): ``tools=None``, ``step_details=None``, ``submit_tool_outputs=None``, a non-empty
``code_interpreter.outputs``, a ``delta.content`` that is one object rather than an array, a
content item without ``type``. ``ImageFile`` keeps ``file_id`` (dashscope drops it).
See ``BaseObject`` for access patterns. Run steps are defined in ``_types_steps`` and exported
from here like every other type.
"""

from __future__ import annotations

from typing import Any

from compat import _types_steps
from compat._types_base import (
    OBJECT_TYPES,
    BaseObject,
    ListObject,
    by_type,
    each,
    object_if_truthy,
    to_object,
)
from compat._types_steps import (
    CodeInterpreter,
    CodeToolCall,
    Function,
    FunctionToolCall,
    LastError,
    MessageCreation,
    MessageCreationStepDetails,
    RetrievalToolCall,
    RunStep,
    RunStepDelta,
    RunStepDeltaContent,
    RunStepList,
    ToolCallsStepDetails,
    Usage,
)

__all__ = [
    "STREAM_EVENT_TYPES",
    "Assistant",
    "AssistantError",
    "AssistantFile",
    "AssistantFileList",
    "AssistantList",
    "BaseObject",
    "CodeInterpreter",
    "CodeToolCall",
    "DeleteResponse",
    "Function",
    "FunctionDefinition",
    "FunctionToolCall",
    "ImageFile",
    "LastError",
    "MessageContentImageFile",
    "MessageContentText",
    "MessageCreation",
    "MessageCreationStepDetails",
    "MessageFile",
    "MessageFileList",
    "RequiredAction",
    "RequiredActionFunctionToolCall",
    "RequiredActionSubmitToolOutputs",
    "RetrievalToolCall",
    "Run",
    "RunList",
    "RunStep",
    "RunStepDelta",
    "RunStepDeltaContent",
    "RunStepList",
    "Text",
    "Thread",
    "ThreadMessage",
    "ThreadMessageDelta",
    "ThreadMessageDeltaContent",
    "ThreadMessageList",
    "ToolCallsStepDetails",
    "ToolCodeInterpreter",
    "ToolFunction",
    "ToolSearch",
    "ToolWanX",
    "Usage",
    "convert_stream_item",
]

# Assistants and their tools (assistant_types.py)


class ToolCodeInterpreter(BaseObject):
    type: str = "code_interpreter"


class ToolSearch(BaseObject):
    type: str = "search"


class ToolWanX(BaseObject):
    type: str = "wanx"


class FunctionDefinition(BaseObject):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ToolFunction(BaseObject):
    _nested = {"function": to_object(FunctionDefinition)}
    _absent = {"function": FunctionDefinition}

    type: str = "function"
    function: FunctionDefinition


#: Only these tool types become objects; quark_search, text_to_image, plugins... stay dicts.
_TOOL_TYPES: dict[str, type[BaseObject]] = {
    "code_interpreter": ToolCodeInterpreter,
    "search": ToolSearch,
    "wanx": ToolWanX,
    "function": ToolFunction,
}
_tools = each(by_type(_TOOL_TYPES))


class Assistant(BaseObject):
    """An assistant; on an error reply only ``status_code/code/message/request_id`` are set."""

    _nested = {"tools": _tools}  # dashscope crashes on tools=None; kept as None
    _absent = {"tools": list}

    status_code: int
    code: str
    message: str
    id: str
    model: str
    created_at: int
    file_ids: list[str]
    tools: list[Any]  # ToolCodeInterpreter | ToolSearch | ToolWanX | ToolFunction | dict
    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    metadata: dict[str, Any] | None = None
    object: str | None = None
    top_p: float | None = None
    top_k: int | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    request_id: str | None = None


class AssistantList(ListObject):
    _nested = {"data": each(to_object(Assistant))}
    data: list[Assistant]


class AssistantFile(BaseObject):
    status_code: int
    id: str
    assistant_id: str
    created_at: int
    object: str


class AssistantFileList(ListObject):
    _nested = {"data": each(to_object(AssistantFile))}
    data: list[AssistantFile]


class DeleteResponse(BaseObject):
    status_code: int
    id: str
    deleted: bool
    object: str  # not declared by dashscope; listed for readers: "assistant.deleted", ...


# Threads and messages (thread_types.py)


class Thread(BaseObject):
    status_code: int
    id: str
    created_at: int
    metadata: dict[str, Any] | None = None
    object: str = "thread"


class Text(BaseObject):
    value: str
    annotations: list[Any] | None = None


class MessageContentText(BaseObject):
    _nested = {"text": to_object(Text)}

    text: Text
    type: str = "text"


class ImageFile(BaseObject):
    file_id: str


class MessageContentImageFile(BaseObject):
    _nested = {"image_file": to_object(ImageFile)}

    image_file: ImageFile
    type: str = "image_file"


_content_item = by_type({"text": MessageContentText, "image_file": MessageContentImageFile})


class ThreadMessage(BaseObject):
    """A message; ``content`` items of a type other than text/image_file stay dicts."""

    _nested = {"content": each(_content_item)}

    status_code: int
    id: str
    created_at: int
    thread_id: str
    role: str
    content: list[Any] | None = None  # dashscope always sets it: None when absent
    metadata: dict[str, Any] | None = None
    object: str = "thread.message"
    assistant_id: str | None = None
    file_ids: list[str] | None = None
    run_id: str | None = None


class ThreadMessageList(ListObject):
    _nested = {"data": each(to_object(ThreadMessage))}
    data: list[ThreadMessage]


def _delta_content(value: Any) -> Any:
    # The wire's array collapses to its LAST item, as in dashscope, so that legacy code can read
    # `delta.content.text.value`. A single dict (dashscope crashes on it) is taken as that item.
    if isinstance(value, list):
        return _content_item(value[-1]) if value else []
    return _content_item(value)


class ThreadMessageDeltaContent(BaseObject):
    _nested = {"content": _delta_content}

    role: str
    content: Any = None  # MessageContentText | MessageContentImageFile | dict | [] | None


_new = object.__new__


class ThreadMessageDelta(BaseObject):
    """One streamed text chunk: ``data.delta.content.text.value``.

    ``status_code`` defaults to 200: these only ever come from a successful stream.
    """

    _nested = {"delta": object_if_truthy(ThreadMessageDeltaContent, empty_to_none=True)}

    status_code: int = 200
    id: str
    object: str = "thread.message.delta"
    delta: ThreadMessageDeltaContent | None = None

    @classmethod
    def of_text(cls, message_id: str, value: str) -> ThreadMessageDelta:
        """``from_dict(message_delta(message_id, value))``, built directly (the stream's hot path).

        A text delta's wire shape is fixed (``{"id", "object", "delta": {"role", "content":
        [{"index", "type": "text", "text": {"value", "annotations"}}]}}``), so its four objects
        are made with their attributes set one by one, in ``from_dict``'s order, and no dict is
        built first. A unit test compares the result with ``from_dict``'s, level by level.
        """
        text = _new(Text)
        text.value = value
        text.annotations = []
        item = _new(MessageContentText)
        item.index = 0  # type: ignore[attr-defined]  # on the wire; no class declares it
        item.type = "text"
        item.text = text
        holder = _new(ThreadMessageDeltaContent)
        holder.role = "assistant"
        holder.content = item
        obj = _new(cls)
        obj.id = message_id
        obj.object = "thread.message.delta"
        obj.delta = holder
        return obj


class MessageFile(BaseObject):
    status_code: int
    id: str
    message_id: str
    created_at: int
    object: str


class MessageFileList(ListObject):
    _nested = {"data": each(to_object(MessageFile))}
    data: list[MessageFile]


# Runs


class RequiredActionFunctionToolCall(BaseObject):
    _nested = {"function": to_object(Function)}
    _absent = {"function": Function}

    id: str
    function: Function
    type: str = "function"


class RequiredActionSubmitToolOutputs(BaseObject):
    _nested = {"tool_calls": each(to_object(RequiredActionFunctionToolCall))}
    _absent = {"tool_calls": list}

    tool_calls: list[RequiredActionFunctionToolCall]


class RequiredAction(BaseObject):
    # dashscope crashes on submit_tool_outputs=None; kept as None
    _nested = {"submit_tool_outputs": to_object(RequiredActionSubmitToolOutputs)}
    _absent = {"submit_tool_outputs": RequiredActionSubmitToolOutputs}

    type: str
    submit_tool_outputs: RequiredActionSubmitToolOutputs


class Run(BaseObject):
    """A run. ``usage`` and ``last_error`` stay plain dicts, as in dashscope.

    Statuses: queued, in_progress, requires_action, cancelling, cancelled, failed, completed,
    expired.
    """

    _nested = {
        "tools": _tools,
        "required_action": object_if_truthy(RequiredAction, empty_to_none=False),
    }
    _absent = {"tools": list}

    status_code: int
    id: str
    assistant_id: str
    status: str
    thread_id: str
    tools: list[Any]  # as Assistant.tools
    cancelled_at: int | None = None
    completed_at: int | None = None
    created_at: int | None = None
    expires_at: int | None = None
    failed_at: int | None = None
    file_ids: list[str] | None = None
    instructions: str | None = None
    metadata: dict[str, Any] | None = None
    last_error: dict[str, Any] | None = None
    model: str | None = None
    object: str = "thread.run"
    required_action: RequiredAction | None = None
    started_at: int | None = None
    top_p: float | None = None
    top_k: int | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    usage: dict[str, Any] | None = None


class RunList(ListObject):
    _nested = {"data": each(to_object(Run))}
    data: list[Run]


class AssistantError(BaseObject, Exception):
    """A stream's ``error`` event, yielded (not raised) as ``("error", err)``.

    Built from ``code``, ``message``, ``request_id`` (and ``status_code``, which dashscope's lacks).
    dashscope builds it from the raw event data and ``json.loads`` its ``message``; here the
    fields arrive already parsed.
    """

    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    status_code: int | None = None

    def __str__(self) -> str:
        return (
            f"Request failed, request_id: {self.request_id}, "
            f"code: {self.code}, message: {self.message}"
        )


# The step types live in a private module; their public home is this one (pickles and reprs
# name ``compat.types.RunStep``, which stays importable wherever the classes are defined).
for _name in _types_steps.__all__:
    getattr(_types_steps, _name).__module__ = __name__
del _name

OBJECT_TYPES.update(
    {
        "assistant": Assistant,
        "assistant.deleted": DeleteResponse,
        "assistant.file": AssistantFile,
        "thread": Thread,
        "thread.message": ThreadMessage,
        "thread.message.file": MessageFile,
        "thread.run": Run,
        "thread.run.step": RunStep,
    }
)

#: Stream event name → the type of its data (dashscope's ``Runs.convert_stream_object``).
STREAM_EVENT_TYPES: dict[str, type[BaseObject]] = {
    "thread.created": Thread,
    "thread.run.created": Run,
    "thread.run.queued": Run,
    "thread.run.in_progress": Run,
    "thread.run.requires_action": Run,
    "thread.run.completed": Run,
    "thread.run.failed": Run,
    "thread.run.cancelled": Run,
    "thread.run.expired": Run,
    "thread.run.step.created": RunStep,
    "thread.run.step.in_progress": RunStep,
    "thread.run.step.delta": RunStepDelta,
    "thread.run.step.completed": RunStep,
    "thread.run.step.failed": RunStep,
    "thread.run.step.cancelled": RunStep,
    "thread.run.step.expired": RunStep,
    "thread.message.created": ThreadMessage,
    "thread.message.in_progress": ThreadMessage,
    "thread.message.delta": ThreadMessageDelta,
    "thread.message.completed": ThreadMessage,
    "thread.message.incomplete": ThreadMessage,
    "error": AssistantError,
}


def convert_stream_item(event: str | None, data: Any) -> tuple[str | None, Any]:
    """``(event, typed object)`` for a known event; any other event keeps ``data`` unchanged.

    Unknown events include ``thread.run.cancelling`` and ``None`` (no ``event:`` line, e.g. an
    HTTP error item), whose data reach the caller as the dict itself.
    """
    cls = STREAM_EVENT_TYPES.get(event) if event is not None else None
    if cls is None or not isinstance(data, dict):
        return event, data
    return event, cls.from_dict(data)
