"""The DashScope Assistant API as served by the emulator, for the real ``dashscope`` SDK.

Objects are the ``compat._objects`` dicts, stored as the API returns them. Turns of the scenario
engine are rendered as the event sequences of EVENTS.md; a non-streamed run plays the same way
with its events discarded, when it reaches its final state.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from compat import _objects as o
from compat._ids import new_id, now_ms
from compat._objects import (
    ACTIVE_RUN_MESSAGE,
    ASSISTANT_FIELDS,
    apply_update,
    assistant_object,
    delete_response,
    function_call,
    list_object,
    message_creation_details,
    message_delta,
    message_object,
    not_found_message,
    required_action,
    run_object,
    run_usage,
    step_delta,
    step_object,
    step_usage,
    text_content,
    thread_object,
    tool_call,
    tool_calls_details,
)
from compat.testing.scenario import (
    CodeInterpreter,
    Conversation,
    Failure,
    FunctionCall,
    ScenarioQueue,
    Script,
    Search,
    Text,
)
from compat.testing.server import (
    APIError,
    JSONReply,
    Reply,
    Request,
    StreamReply,
    new_request_id,
    paginate,
)

__all__ = ["AssistantsAPI", "encode_event"]

JSON = dict[str, Any]

_ACTIVE = frozenset({"queued", "in_progress", "requires_action", "cancelling"})
_MOVING = frozenset({"queued", "in_progress", "cancelling"})  # states that advance by themselves
_DONE = b"event:done\ndata:[DONE]\n\n"
_SAMPLING = ("top_p", "top_k", "temperature", "max_tokens")


def encode_event(name: str, payload: JSON) -> bytes:
    """``event:<name>\\ndata:<one-line JSON>\\n\\n``, exactly as dashscope's parser needs it."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"event:{name}\ndata:{data}\n\n".encode()


class _Events:
    """Collects a stream's encoded events; ``_Events(None)`` discards them (non-streamed runs)."""

    def __init__(self, chunks: list[bytes] | None) -> None:
        self.chunks = chunks

    def __call__(self, name: str, payload: JSON) -> None:
        if self.chunks is not None:
            self.chunks.append(encode_event(name, payload))

    def text_deltas(self, message_id: str, pieces: Sequence[str]) -> None:
        """The ``thread.message.delta`` events: the hot path of long streams, so from a template."""
        if self.chunks is None:
            return
        template = encode_event("thread.message.delta", message_delta(message_id, "\x00"))
        head, tail = template.split(b'"\\u0000"')  # json.dumps's spelling of the placeholder
        dumps = json.dumps
        self.chunks.extend(head + dumps(p, ensure_ascii=False).encode() + tail for p in pieces)


_DISCARD = _Events(None)


def _missing(thing: str) -> APIError:
    return APIError(400, "InvalidParameter", not_found_message(thing))


def _invalid(message: str) -> APIError:
    return APIError(400, "InvalidParameter", message)


@dataclass
class _Thread:
    obj: JSON
    messages: dict[str, JSON] = field(default_factory=dict)
    runs: dict[str, _Run] = field(default_factory=dict)
    #: ``(role, text)`` of everything said in the thread, for the scenario engine.
    history: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Run:
    obj: JSON
    thread: _Thread
    script: Script
    steps: dict[str, JSON] = field(default_factory=dict)
    tokens: tuple[int, int] | None = None  # summed over the run's finished turns
    tool_step: JSON | None = None  # the function-call step waiting for outputs
    outputs: dict[str, str] | None = None  # submitted outputs not applied yet
    last_move: float = 0.0  # time.monotonic() of the last automatic advance


class AssistantsAPI:
    """The ``/api/v1`` routes: assistants, threads, messages, runs, steps."""

    prefix = "/api/v1"

    def __init__(
        self, scenarios: ScenarioQueue, *, api_key: str, auto_advance: float | None
    ) -> None:
        self._scenarios = scenarios
        self._api_key = api_key
        self._auto_advance = auto_advance
        self._lock = threading.Lock()
        self._assistants: dict[str, JSON] = {}
        self._threads: dict[str, _Thread] = {}
        self._moving: dict[str, _Run] = {}  # non-streamed runs still advancing
        self._routes: list[tuple[str, tuple[str, ...], Callable[..., Reply]]] = [
            ("POST", ("assistants",), self._create_assistant),
            ("GET", ("assistants",), self._list_assistants),
            ("GET", ("assistants", "*"), self._get_assistant),
            ("POST", ("assistants", "*"), self._update_assistant),
            ("DELETE", ("assistants", "*"), self._delete_assistant),
            ("POST", ("threads",), self._create_thread),
            ("POST", ("threads", "runs"), self._create_thread_and_run),
            ("GET", ("threads", "*"), self._get_thread),
            ("POST", ("threads", "*"), self._update_thread),
            ("DELETE", ("threads", "*"), self._delete_thread),
            ("POST", ("threads", "*", "messages"), self._create_message),
            ("GET", ("threads", "*", "messages"), self._list_messages),
            ("GET", ("threads", "*", "messages", "*"), self._get_message),
            ("POST", ("threads", "*", "messages", "*"), self._update_message),
            ("POST", ("threads", "*", "runs"), self._create_run),
            ("GET", ("threads", "*", "runs"), self._list_runs),
            ("GET", ("threads", "*", "runs", "*"), self._get_run),
            ("POST", ("threads", "*", "runs", "*"), self._update_run),
            ("POST", ("threads", "*", "runs", "*", "cancel"), self._cancel_run),
            ("POST", ("threads", "*", "runs", "*", "submit_tool_outputs"), self._submit),
            ("GET", ("threads", "*", "runs", "*", "steps"), self._list_steps),
            ("GET", ("threads", "*", "runs", "*", "steps", "*"), self._get_step),
        ]

    def reset(self) -> None:
        with self._lock:
            self._assistants.clear()
            self._threads.clear()
            self._moving.clear()

    def handle(self, request: Request, subpath: str) -> Reply:
        if request.bearer_token() != self._api_key:
            return self._error(APIError(401, "InvalidApiKey", "Invalid API-key provided."))
        route = self._match(request.method, subpath)
        if route is None:
            return self._error(APIError(404, "NotFound", f"No route for {request.path}."))
        handler, args = route
        with self._lock:
            try:
                if request.invalid_json:
                    raise _invalid("The request body is not valid JSON.")
                self._catch_up()
                return handler(request, *args)
            except APIError as exc:
                return self._error(exc)

    def _match(self, method: str, subpath: str) -> tuple[Callable[..., Reply], list[str]] | None:
        segments = [s for s in subpath.split("/") if s]
        for route_method, pattern, handler in self._routes:
            if route_method != method or len(pattern) != len(segments):
                continue
            pairs = list(zip(pattern, segments, strict=True))
            if all(p in ("*", s) for p, s in pairs):
                return handler, [s for p, s in pairs if p == "*"]
        return None

    # --- replies and lookups -------------------------------------------------------------

    @staticmethod
    def _reply(obj: JSON) -> JSONReply:
        return JSONReply.of(200, {**obj, "request_id": new_request_id()})

    @staticmethod
    def _error(exc: APIError) -> JSONReply:
        body = {"code": exc.code, "message": exc.message, "request_id": new_request_id()}
        return JSONReply.of(exc.status, body)

    def _list(self, objs: list[JSON], request: Request, thing: str) -> JSONReply:
        page, has_more = paginate(objs, request.query, thing)
        first, last = (page[0]["id"], page[-1]["id"]) if page else (None, None)
        return self._reply(list_object(page, has_more=has_more, first_id=first, last_id=last))

    @staticmethod
    def _body(request: Request) -> JSON:
        body = request.json
        if body is None or body == "":  # dashscope sends the JSON string "" for an empty thread
            return {}
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object.")
        return body

    @staticmethod
    def _required(body: JSON, key: str) -> Any:
        if not body.get(key):
            raise _invalid(f"Missing required parameter '{key}'.")
        return body[key]

    def _assistant(self, assistant_id: str) -> JSON:
        if assistant_id not in self._assistants:
            raise _missing("assistant")
        return self._assistants[assistant_id]

    def _thread(self, thread_id: str) -> _Thread:
        if thread_id not in self._threads:
            raise _missing("thread")
        return self._threads[thread_id]

    def _run(self, thread_id: str, run_id: str) -> _Run:
        runs = self._thread(thread_id).runs
        if run_id not in runs:
            raise _missing("run")
        return runs[run_id]

    # --- assistants ----------------------------------------------------------------------

    def _create_assistant(self, request: Request) -> Reply:
        body = self._body(request)
        self._required(body, "model")
        _check_tools(body.get("tools"))
        obj = assistant_object(new_id("asst"), now_ms(), body)
        self._assistants[obj["id"]] = obj
        return self._reply(obj)

    def _list_assistants(self, request: Request) -> Reply:
        return self._list(list(self._assistants.values()), request, "assistant")

    def _get_assistant(self, request: Request, assistant_id: str) -> Reply:
        return self._reply(self._assistant(assistant_id))

    def _update_assistant(self, request: Request, assistant_id: str) -> Reply:
        old = self._assistant(assistant_id)
        body = self._body(request)
        _check_tools(body.get("tools"))
        changes = {k: body[k] for k in ASSISTANT_FIELDS if k in body}
        obj = assistant_object(assistant_id, old["created_at"], apply_update(old, changes))
        self._assistants[assistant_id] = obj
        return self._reply(obj)

    def _delete_assistant(self, request: Request, assistant_id: str) -> Reply:
        self._assistant(assistant_id)
        del self._assistants[assistant_id]
        return self._reply(delete_response(assistant_id, "assistant"))

    # --- threads and messages ------------------------------------------------------------

    def _new_thread(self, body: JSON) -> _Thread:
        messages = body.get("messages") or []
        if not isinstance(messages, list):
            raise _invalid("messages must be a list.")
        for message in messages:
            _check_message(message)
        thread = _Thread(thread_object(new_id("thread"), now_ms(), body.get("metadata")))
        self._threads[thread.obj["id"]] = thread
        for message in messages:
            self._add_message(thread, message)
        return thread

    def _add_message(self, thread: _Thread, body: JSON) -> JSON:
        role = body.get("role") or "user"
        msg = message_object(
            new_id("msg"),
            now_ms(),
            thread.obj["id"],
            role=role,
            text=body["content"],
            file_ids=body.get("file_ids"),
            metadata=body.get("metadata"),
        )
        thread.messages[msg["id"]] = msg
        thread.history.append((role, body["content"]))
        return msg

    def _create_thread(self, request: Request) -> Reply:
        return self._reply(self._new_thread(self._body(request)).obj)

    def _get_thread(self, request: Request, thread_id: str) -> Reply:
        return self._reply(self._thread(thread_id).obj)

    def _update_thread(self, request: Request, thread_id: str) -> Reply:
        obj = self._thread(thread_id).obj
        _update_metadata(obj, self._body(request))
        return self._reply(obj)

    def _delete_thread(self, request: Request, thread_id: str) -> Reply:
        thread = self._thread(thread_id)
        for run_id in thread.runs:
            self._moving.pop(run_id, None)
        del self._threads[thread_id]
        return self._reply(delete_response(thread_id, "thread"))

    def _create_message(self, request: Request, thread_id: str) -> Reply:
        thread = self._thread(thread_id)
        body = self._body(request)
        _check_message(body)
        return self._reply(self._add_message(thread, body))

    def _list_messages(self, request: Request, thread_id: str) -> Reply:
        return self._list(list(self._thread(thread_id).messages.values()), request, "message")

    def _message(self, thread_id: str, message_id: str) -> JSON:
        messages = self._thread(thread_id).messages
        if message_id not in messages:
            raise _missing("message")
        return messages[message_id]

    def _get_message(self, request: Request, thread_id: str, message_id: str) -> Reply:
        return self._reply(self._message(thread_id, message_id))

    def _update_message(self, request: Request, thread_id: str, message_id: str) -> Reply:
        msg = self._message(thread_id, message_id)
        _update_metadata(msg, self._body(request))
        return self._reply(msg)

    # --- runs: requests ------------------------------------------------------------------

    def _create_thread_and_run(self, request: Request) -> Reply:
        body = self._body(request)
        thread_body = body.get("thread") or {}
        if not isinstance(thread_body, dict):
            raise _invalid("thread must be an object.")
        for message in thread_body.get("messages") or []:
            _check_message(message)
        fields, assistant_id = self._run_fields(body)
        script = self._take_script()
        thread = self._new_thread(thread_body)
        stream = body.get("stream") is True
        return self._start_run(thread, fields, assistant_id, script, stream, created_thread=True)

    def _create_run(self, request: Request, thread_id: str) -> Reply:
        thread = self._thread(thread_id)
        body = self._body(request)
        for run in thread.runs.values():
            if run.obj["status"] in _ACTIVE:
                raise _invalid(ACTIVE_RUN_MESSAGE.format(thread_id=thread_id, run_id=run.obj["id"]))
        fields, assistant_id = self._run_fields(body)
        script = self._take_script()
        stream = body.get("stream") is True
        return self._start_run(thread, fields, assistant_id, script, stream, created_thread=False)

    def _take_script(self) -> Script:
        script = self._scenarios.take()
        _raise_http_failure(script)
        return script

    def _run_fields(self, body: JSON) -> tuple[JSON, str]:
        """The run's settings: the body's, else the assistant's; extra instructions appended."""
        assistant_id = self._required(body, "assistant_id")
        assistant = self._assistant(assistant_id)
        _check_tools(body.get("tools"))
        fields = {
            key: body[key] if body.get(key) is not None else assistant.get(key)
            for key in ("model", "instructions", "tools", *_SAMPLING)
        }
        extra = body.get("additional_instructions")
        if extra:
            base = fields["instructions"]
            fields["instructions"] = f"{base}\n\n{extra}" if base else extra
        fields["metadata"] = body.get("metadata")
        return fields, assistant_id

    def _start_run(
        self,
        thread: _Thread,
        fields: JSON,
        assistant_id: str,
        script: Script,
        stream: bool,
        *,
        created_thread: bool,
    ) -> Reply:
        obj = run_object(new_id("run"), now_ms(), thread.obj["id"], assistant_id, fields)
        run = _Run(obj, thread, script)
        thread.runs[obj["id"]] = run
        if not stream:
            self._keep_moving(run)
            return self._reply(obj)
        emit = _Events([])
        if created_thread:
            emit("thread.created", thread.obj)
        emit("thread.run.created", obj)
        emit("thread.run.queued", obj)
        return self._stream(run, emit)

    def _stream(self, run: _Run, emit: _Events) -> StreamReply:
        self._begin(run, emit)
        chunks = emit.chunks
        assert chunks is not None
        if self._proceed(run, emit):
            chunks.append(_DONE)
        return StreamReply(chunks, run.script.pace)

    def _list_runs(self, request: Request, thread_id: str) -> Reply:
        runs = [run.obj for run in self._thread(thread_id).runs.values()]
        return self._list(runs, request, "run")

    def _get_run(self, request: Request, thread_id: str, run_id: str) -> Reply:
        run = self._run(thread_id, run_id)
        if run.obj["id"] in self._moving:
            self._advance(run)
            run.last_move = time.monotonic()
        return self._reply(run.obj)

    def _update_run(self, request: Request, thread_id: str, run_id: str) -> Reply:
        obj = self._run(thread_id, run_id).obj
        _update_metadata(obj, self._body(request))
        return self._reply(obj)

    def _cancel_run(self, request: Request, thread_id: str, run_id: str) -> Reply:
        run = self._run(thread_id, run_id)
        status = run.obj["status"]
        if status not in ("queued", "in_progress", "requires_action"):
            raise _invalid(o.cannot_cancel_message(status))
        run.obj["status"] = "cancelling"
        self._keep_moving(run)
        return self._reply(run.obj)

    def _submit(self, request: Request, thread_id: str, run_id: str) -> Reply:
        run = self._run(thread_id, run_id)
        status = run.obj["status"]
        if status != "requires_action" or run.tool_step is None:
            raise _invalid(o.not_requires_action_message(status))
        body = self._body(request)
        outputs = _tool_outputs(run.tool_step, body.get("tool_outputs"))
        _raise_http_failure(run.script)
        run.outputs = outputs
        run.obj.update(status="queued", required_action=None)
        if body.get("stream") is not True:
            self._keep_moving(run)
            return self._reply(run.obj)
        emit = _Events([])
        emit("thread.run.queued", run.obj)
        return self._stream(run, emit)

    def _list_steps(self, request: Request, thread_id: str, run_id: str) -> Reply:
        steps = list(self._run(thread_id, run_id).steps.values())
        return self._list(steps, request, "step")

    def _get_step(self, request: Request, thread_id: str, run_id: str, step_id: str) -> Reply:
        steps = self._run(thread_id, run_id).steps
        if step_id not in steps:
            raise _missing("step")
        return self._reply(steps[step_id])

    # --- runs: the state machine ---------------------------------------------------------

    def _keep_moving(self, run: _Run) -> None:
        run.last_move = time.monotonic()
        self._moving[run.obj["id"]] = run

    def _catch_up(self) -> None:
        """Apply the auto-advance timer: one state per elapsed period, observed lazily."""
        period = self._auto_advance
        if period is None:
            return
        now = time.monotonic()
        for run in list(self._moving.values()):
            while run.obj["id"] in self._moving and now - run.last_move >= period:
                self._advance(run)
                run.last_move += period

    def _advance(self, run: _Run) -> None:
        """One step of a non-streamed run: queued → in_progress → final, cancelling → cancelled."""
        status = run.obj["status"]
        if status == "queued":
            self._begin(run, _DISCARD)
        elif status == "in_progress":
            self._proceed(run, _DISCARD)
        elif status == "cancelling":
            now = now_ms()
            run.obj.update(status="cancelled", cancelled_at=now, required_action=None)
            if run.tool_step is not None:
                run.tool_step.update(status="cancelled", cancelled_at=now)
                run.tool_step = None
        if run.obj["status"] not in _MOVING:
            self._moving.pop(run.obj["id"], None)

    @staticmethod
    def _begin(run: _Run, emit: _Events) -> None:
        run.obj["status"] = "in_progress"
        run.obj["started_at"] = run.obj["started_at"] or now_ms()
        emit("thread.run.in_progress", run.obj)

    def _proceed(self, run: _Run, emit: _Events) -> bool:
        """Apply submitted outputs, then play the next turn; False if the stream must just end."""
        if run.outputs is not None and run.tool_step is not None:
            step = run.tool_step
            for call in step["step_details"]["tool_calls"]:
                output = run.outputs[call["id"]]
                call["function"]["output"] = output
                run.thread.history.append(("tool", output))
            step.update(status="completed", completed_at=now_ms())
            emit("thread.run.step.completed", step)
            run.tool_step = run.outputs = None
        return _TurnPlayer(run, emit).play()


class _TurnPlayer:
    """Renders the next turn of a run as Assistant-API events, updating the stored objects."""

    def __init__(self, run: _Run, emit: _Events) -> None:
        self.run, self.emit = run, emit
        tools = tuple(str(t.get("type")) for t in run.obj["tools"] if isinstance(t, dict))
        self.conversation = Conversation(tuple(run.thread.history), run.obj["instructions"], tools)
        self.open_message: JSON | None = None
        self.open_step: JSON | None = None

    def play(self) -> bool:
        run = self.run
        turn = run.script.next_turn(self.conversation)
        usage = turn.usage_for(self.conversation)
        for item in turn.items:
            if isinstance(item, Text):
                self._text(item, usage)
            elif isinstance(item, CodeInterpreter):
                self._builtin("code_interpreter", item.pieces(), item.code, item.output)
            elif isinstance(item, Search):
                self._builtin("quark_search", [item.arguments()], item.arguments(), item.output())
        run.thread.history.extend(turn.transcript())
        failure = turn.failure
        if failure is not None:
            return self._fail(failure)
        self._close_open()
        run.tokens = usage if run.tokens is None else _add(run.tokens, usage)
        if turn.function_calls:
            self._call_functions(turn.function_calls)
        else:
            run.obj.update(status="completed", completed_at=now_ms(), usage=run_usage(*run.tokens))
            self.emit("thread.run.completed", run.obj)
        return True

    def _new_step(self, details: JSON) -> JSON:
        step = step_object(new_id("step"), now_ms(), self.run.obj, step_details=details)
        self.run.steps[step["id"]] = step
        self.emit("thread.run.step.created", step)
        self.emit("thread.run.step.in_progress", step)
        return step

    def _close_open(self) -> None:
        """Complete the item rendered last (items stay open in case a Failure follows)."""
        if self.open_message is not None:
            self.open_message["status"] = "completed"
            self.emit("thread.message.completed", self.open_message)
        if self.open_step is not None:
            self.open_step.update(status="completed", completed_at=now_ms())
            self.emit("thread.run.step.completed", self.open_step)
        self.open_message = self.open_step = None

    def _text(self, item: Text, usage: tuple[int, int]) -> None:
        self._close_open()
        run, emit = self.run, self.emit
        message_id = new_id("msg")
        step = self._new_step(message_creation_details(message_id))
        msg = message_object(
            message_id,
            now_ms(),
            run.thread.obj["id"],
            role="assistant",
            text=None,
            status="in_progress",
            assistant_id=run.obj["assistant_id"],
            run_id=run.obj["id"],
        )
        run.thread.messages[message_id] = msg
        emit("thread.message.created", msg)
        emit("thread.message.in_progress", msg)
        emit.text_deltas(message_id, item.pieces())
        msg["content"] = [text_content(item.text)]
        step["usage"] = step_usage(*usage)
        self.open_message, self.open_step = msg, step

    def _builtin(self, tool: str, pieces: Sequence[str], arguments: str, output: str) -> None:
        self._close_open()
        call_id = new_id("call")
        step = self._new_step(tool_calls_details([]))
        for piece in pieces:
            delta = step_delta(step["id"], [tool_call(call_id, tool, piece, "")])
            self.emit("thread.run.step.delta", delta)
        delta = step_delta(step["id"], [tool_call(call_id, tool, "", output)])
        self.emit("thread.run.step.delta", delta)
        step["step_details"] = tool_calls_details([tool_call(call_id, tool, arguments, output)])
        self.open_step = step

    def _call_functions(self, calls: tuple[FunctionCall, ...]) -> None:
        run = self.run
        step = self._new_step(tool_calls_details([]))
        full = []
        for index, call in enumerate(calls):
            call_id = call.call_id or new_id("call")
            for arguments in ("", call.arguments):
                delta = function_call(call_id, call.name, arguments, None, index)
                self.emit("thread.run.step.delta", step_delta(step["id"], [delta]))
            full.append(function_call(call_id, call.name, call.arguments, None, index))
        step["step_details"] = tool_calls_details(full)
        run.tool_step = step
        run.obj.update(status="requires_action", required_action=required_action(full))
        self.emit("thread.run.requires_action", run.obj)

    def _fail(self, failure: Failure) -> bool:
        """The failure sequence; with ``error_event`` the same state, but a raw error event.

        The Responses-only modes (``incomplete``, ``drop``, ``stall``, ...) have no Assistant-API
        form: they play as ``run_failed`` with the same code and message, which is also how
        compat reports a Responses transport failure (``thread.run.failed``).
        """
        run = self.run
        raw_error = failure.mode == "error_event"
        emit = _DISCARD if raw_error else self.emit
        error = {"code": failure.code, "message": failure.message}
        now = now_ms()
        if self.open_message is not None:
            self.open_message["status"] = "incomplete"
            emit("thread.message.incomplete", self.open_message)
        if self.open_step is not None:
            self.open_step.update(
                status="failed", failed_at=now, last_error=dict(error), usage=None
            )
            emit("thread.run.step.failed", self.open_step)
        usage = run_usage(*run.tokens) if run.tokens is not None else None
        run.obj.update(status="failed", failed_at=now, last_error=error, usage=usage)
        emit("thread.run.failed", run.obj)
        if not raw_error:
            return True
        self.emit("error", {**error, "request_id": new_request_id()})
        return False


def _raise_http_failure(script: Script) -> None:
    """Fail the request itself if the script's next turn is ``Failure(mode="http_error")``."""
    failure = script.take_http_error()
    if failure is not None and failure.status is not None:
        raise APIError(failure.status, failure.code, failure.message)


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] + b[0], a[1] + b[1]


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list) or not all(
        isinstance(t, dict) and isinstance(t.get("type"), str) for t in tools
    ):
        raise _invalid("tools must be a list of objects, each with a 'type'.")


def _check_message(message: Any) -> None:
    if not isinstance(message, dict):
        raise _invalid("A message must be an object with 'role' and 'content'.")
    if not isinstance(message.get("content"), str) or not message["content"]:
        raise _invalid("Missing required parameter 'content'.")
    if (message.get("role") or "user") not in ("user", "assistant"):
        raise _invalid("A message's role must be 'user' or 'assistant'.")


def _update_metadata(obj: JSON, body: JSON) -> None:
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _invalid("metadata must be an object.")
        obj["metadata"] = metadata


def _tool_outputs(step: JSON, outputs: Any) -> dict[str, str]:
    """Submitted outputs by call id, checked against the calls pending on ``step``."""
    pending = [call["id"] for call in step["step_details"]["tool_calls"]]
    matched = o.match_tool_outputs(pending, outputs)
    if isinstance(matched, str):
        raise _invalid(matched)
    return matched
