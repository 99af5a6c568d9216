"""The DashScope Assistant API as served by the emulator, for the real ``dashscope`` SDK.

Objects are the emulator's own wire dicts (``_wire``, not compat's), stored as the API returns
them. Turns of the scenario engine are rendered as the event sequences of EVENTS.md
(``assistants_events``); a non-streamed run plays the same way with its events discarded, when it
reaches its final state. A streamed run is rendered whole when requested; if its client leaves
before the end, the run is stored as cancelled after the events it was sent.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from compat.testing import _wire as w
from compat.testing._clock import new_id, now_ms
from compat.testing.assistants_events import (
    Advancer,
    Events,
    RunState,
    StreamLog,
    ThreadState,
    render_stream,
)
from compat.testing.scenario import ScenarioQueue, Script
from compat.testing.server import (
    APIError,
    JSONReply,
    Reply,
    Request,
    StreamReply,
    new_request_id,
    paginate,
)

__all__ = ["AssistantsAPI"]

JSON = dict[str, Any]

_ACTIVE = frozenset({"queued", "in_progress", "requires_action", "cancelling"})


def _missing(thing: str) -> APIError:
    return APIError(400, "InvalidParameter", w.not_found_message(thing))


def _invalid(message: str) -> APIError:
    return APIError(400, "InvalidParameter", message)


class AssistantsAPI:
    """The ``/api/v1`` routes: assistants, threads, messages, runs, steps."""

    prefix = "/api/v1"

    def __init__(
        self, scenarios: ScenarioQueue, *, api_key: str, auto_advance: float | None
    ) -> None:
        self._scenarios = scenarios
        self._api_key = api_key
        self._lock = threading.Lock()
        self._assistants: dict[str, JSON] = {}
        self._threads: dict[str, ThreadState] = {}
        self._moving = Advancer(auto_advance)  # non-streamed runs
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
            self._moving.runs.clear()

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
                self._moving.catch_up()
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
        return JSONReply.of(exc.status, w.error_body(exc.code, exc.message, new_request_id()))

    def _list(self, objs: list[JSON], request: Request, thing: str) -> JSONReply:
        page, has_more = paginate(objs, request.query, thing)
        return self._reply(w.list_page(page, has_more))

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

    def _thread(self, thread_id: str) -> ThreadState:
        if thread_id not in self._threads:
            raise _missing("thread")
        return self._threads[thread_id]

    def _run(self, thread_id: str, run_id: str) -> RunState:
        runs = self._thread(thread_id).runs
        if run_id not in runs:
            raise _missing("run")
        return runs[run_id]

    # --- assistants ----------------------------------------------------------------------

    def _create_assistant(self, request: Request) -> Reply:
        body = self._body(request)
        self._required(body, "model")
        _check_tools(body.get("tools"))
        obj = w.assistant(new_id("asst"), now_ms(), body)
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
        obj = w.assistant(assistant_id, old["created_at"], w.updated(old, body))
        self._assistants[assistant_id] = obj
        return self._reply(obj)

    def _delete_assistant(self, request: Request, assistant_id: str) -> Reply:
        self._assistant(assistant_id)
        del self._assistants[assistant_id]
        return self._reply(w.deleted(assistant_id, "assistant"))

    # --- threads and messages ------------------------------------------------------------

    def _new_thread(self, body: JSON) -> ThreadState:
        messages = body.get("messages") or []
        if not isinstance(messages, list):
            raise _invalid("messages must be a list.")
        for message in messages:
            _check_message(message)
        thread = ThreadState(w.thread(new_id("thread"), now_ms(), body.get("metadata")))
        self._threads[thread.obj["id"]] = thread
        for message in messages:
            self._add_message(thread, message)
        return thread

    def _add_message(self, thread: ThreadState, body: JSON) -> JSON:
        role = body.get("role") or "user"
        msg = w.message(
            new_id("msg"),
            now_ms(),
            thread.obj["id"],
            role,
            [w.text_part(body["content"])],
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
            self._moving.runs.pop(run_id, None)
        del self._threads[thread_id]
        return self._reply(w.deleted(thread_id, "thread"))

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
                raise _invalid(w.active_run_message(thread_id, run.obj["id"]))
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
            for key in ("model", "instructions", "tools", *w.SAMPLING)
        }
        extra = body.get("additional_instructions")
        if extra:
            base = fields["instructions"]
            fields["instructions"] = f"{base}\n\n{extra}" if base else extra
        fields["metadata"] = body.get("metadata")
        return fields, assistant_id

    def _start_run(
        self,
        thread: ThreadState,
        fields: JSON,
        assistant_id: str,
        script: Script,
        stream: bool,
        *,
        created_thread: bool,
    ) -> Reply:
        obj = w.run(new_id("run"), now_ms(), thread.obj["id"], assistant_id, fields)
        run = RunState(obj, thread, script)
        thread.runs[obj["id"]] = run
        if not stream:
            self._moving.add(run)
            return self._reply(obj)
        emit = Events([])
        if created_thread:
            emit("thread.created", thread.obj)
        emit("thread.run.created", obj)
        emit("thread.run.queued", obj)
        return self._stream(run, emit)

    def _stream(self, run: RunState, emit: Events) -> StreamReply:
        log = render_stream(run, emit)
        on_disconnect = functools.partial(self._disconnected, log)
        return StreamReply(log.chunks, run.script.pace, on_disconnect=on_disconnect)

    def _disconnected(self, log: StreamLog, sent: int) -> None:
        """The client left after ``sent`` events: cancel the run there, unless it moved on since."""
        with self._lock:  # called by the thread that wrote the stream, outside the request's lock
            run = log.run
            current = run.stream() if run.stream is not None else None
            if current is log and self._threads.get(run.obj["thread_id"]) is run.thread:
                run.stream = None
                log.cut(sent)

    def _list_runs(self, request: Request, thread_id: str) -> Reply:
        runs = [run.obj for run in self._thread(thread_id).runs.values()]
        return self._list(runs, request, "run")

    def _get_run(self, request: Request, thread_id: str, run_id: str) -> Reply:
        run = self._run(thread_id, run_id)
        self._moving.step(run)
        return self._reply(run.obj)

    def _update_run(self, request: Request, thread_id: str, run_id: str) -> Reply:
        obj = self._run(thread_id, run_id).obj
        _update_metadata(obj, self._body(request))
        return self._reply(obj)

    def _cancel_run(self, request: Request, thread_id: str, run_id: str) -> Reply:
        run = self._run(thread_id, run_id)
        status = run.obj["status"]
        if status not in ("queued", "in_progress", "requires_action"):
            raise _invalid(w.cannot_cancel_message(status))
        run.stream = None
        run.obj["status"] = "cancelling"
        self._moving.add(run)
        return self._reply(run.obj)

    def _submit(self, request: Request, thread_id: str, run_id: str) -> Reply:
        run = self._run(thread_id, run_id)
        status = run.obj["status"]
        if status != "requires_action" or run.tool_step is None:
            raise _invalid(w.not_requires_action_message(status))
        body = self._body(request)
        outputs = _tool_outputs(run.tool_step, body.get("tool_outputs"))
        _raise_http_failure(run.script)
        run.stream = None
        run.outputs = outputs
        run.obj.update(status="queued", required_action=None)
        if body.get("stream") is not True:
            self._moving.add(run)
            return self._reply(run.obj)
        emit = Events([])
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


def _raise_http_failure(script: Script) -> None:
    """Fail the request itself if the script's next turn is ``Failure(mode="http_error")``."""
    failure = script.take_http_error()
    if failure is not None and failure.status is not None:
        raise APIError(failure.status, failure.code, failure.message)


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
    """Submitted outputs by call id, checked against the calls pending on ``step``.

    One output without ``tool_call_id`` answers the only pending call: DashScope's overview
    submits ``[{"output": ...}]`` that way (reference §3, inferred).
    """
    pending = [call["id"] for call in step["step_details"]["tool_calls"]]
    if not isinstance(outputs, list) or not outputs:
        raise _invalid("Missing required parameter 'tool_outputs'.")
    if any(not isinstance(out, dict) or not isinstance(out.get("output"), str) for out in outputs):
        raise _invalid("Each tool output needs a string 'output'.")
    if len(pending) == 1 and len(outputs) == 1 and not outputs[0].get("tool_call_id"):
        return {pending[0]: outputs[0]["output"]}
    by_call: dict[str, str] = {}
    for out in outputs:
        call_id = out.get("tool_call_id")
        if call_id not in pending:
            raise _invalid(f"Tool call '{call_id}' is not pending on this run.")
        by_call[call_id] = out["output"]
    unanswered = [call_id for call_id in pending if call_id not in by_call]
    if unanswered:
        raise _invalid(f"Missing tool outputs for tool calls: {', '.join(unanswered)}.")
    return by_call
