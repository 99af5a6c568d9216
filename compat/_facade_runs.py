"""The public classes ``Messages``, ``Runs`` and ``Steps`` (see ``_facade`` for the rules)."""

from __future__ import annotations

from typing import Any

from compat import types as t
from compat._facade import FileIds, Stream, ToolOutputs, Tools, _options, _query, _typed
from compat.backends import JSON
from compat.errors import InputRequired

__all__ = ["Messages", "Runs", "Steps"]


class Messages:
    """Thread messages: ``create``/``call``, ``retrieve``/``get``, ``list``, ``update``."""

    @classmethod
    def call(
        cls,
        thread_id: str,
        *,
        content: str,
        role: str = "user",
        file_ids: FileIds = [],  # noqa: B006 - dashscope's default, never mutated
        metadata: object | None = None,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.ThreadMessage:
        return cls.create(
            thread_id,
            content=content,
            role=role,
            file_ids=file_ids,
            metadata=metadata,
            workspace=workspace,
            api_key=api_key,
            **kwargs,
        )

    @classmethod
    def create(
        cls,
        thread_id: str,
        *,
        content: str,
        role: str = "user",
        file_ids: FileIds = [],  # noqa: B006
        metadata: object | None = None,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.ThreadMessage:
        if not thread_id or not content:
            raise InputRequired("thread_id and content are required!")
        params = {"content": content, "role": role, "file_ids": file_ids, "metadata": metadata}
        backend, opts = _options(workspace, api_key, kwargs)
        return t.ThreadMessage.from_dict(backend.create_message(thread_id, params, opts))

    @classmethod
    def retrieve(
        cls,
        message_id: str,
        *,
        thread_id: str,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.ThreadMessage:
        if not message_id or not thread_id:
            raise InputRequired("thread id, message id are required!")
        backend, opts = _options(workspace, api_key, kwargs)
        return t.ThreadMessage.from_dict(backend.retrieve_message(thread_id, message_id, opts))

    @classmethod
    def get(
        cls,
        message_id: str,
        *,
        thread_id: str,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.ThreadMessage:
        return cls.retrieve(
            message_id, thread_id=thread_id, workspace=workspace, api_key=api_key, **kwargs
        )

    @classmethod
    def list(
        cls,
        thread_id: str,
        *,
        limit: int | None = None,
        order: str | None = None,
        after: str | None = None,
        before: str | None = None,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.ThreadMessageList:
        if not thread_id:
            raise InputRequired("thread id is required!")
        query = _query(limit, order, after, before)
        backend, opts = _options(workspace, api_key, kwargs)
        return t.ThreadMessageList.from_dict(backend.list_messages(thread_id, query, opts))

    @classmethod
    def update(
        cls,
        message_id: str,
        *,
        thread_id: str,
        metadata: JSON | None = None,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.ThreadMessage:
        if not thread_id or not message_id:
            raise InputRequired("thread id and message id are required!")
        backend, opts = _options(workspace, api_key, kwargs)
        reply = backend.update_message(thread_id, message_id, {"metadata": metadata}, opts)
        return t.ThreadMessage.from_dict(reply)


class Runs:
    """Runs: create (streamed or not), retrieve, list, update, cancel, submit_tool_outputs, wait."""

    @classmethod
    def create_thread_and_run(
        cls,
        *,
        assistant_id: str,
        thread: JSON | None = None,
        model: str | None = None,
        instructions: str | None = None,
        additional_instructions: str | None = None,
        tools: Tools = None,
        stream: bool | None = False,
        metadata: JSON | None = None,
        workspace: str | None = None,
        extra_body: JSON | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.Run | Stream:
        if not assistant_id:
            raise InputRequired("assistant_id is required")
        params = {
            "assistant_id": assistant_id,
            "thread": thread,
            "model": model,
            "instructions": instructions,
            "additional_instructions": additional_instructions,
            "tools": tools,
            "stream": stream,
            "metadata": metadata,
            "extra_body": extra_body,
        }
        backend, opts = _options(workspace, api_key, kwargs)
        return _typed(t.Run, backend.create_thread_and_run(params, opts))  # type: ignore[no-any-return]

    @classmethod
    def create(
        cls,
        thread_id: str,
        *,
        assistant_id: str,
        model: str | None = None,
        instructions: str | None = None,
        additional_instructions: str | None = None,
        tools: Tools = None,
        metadata: JSON | None = None,
        stream: bool | None = False,
        workspace: str | None = None,
        extra_body: JSON | None = None,
        api_key: str | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        **kwargs: Any,
    ) -> t.Run | Stream:
        """Start a run; with ``stream=True`` a generator of ``(event, data)`` items."""
        if not thread_id or not assistant_id:
            raise InputRequired("thread_id and assistant_id is required")
        params = {
            "assistant_id": assistant_id,
            "model": model,
            "instructions": instructions,
            "additional_instructions": additional_instructions,
            "tools": tools,
            "metadata": metadata,
            "stream": stream,
            "extra_body": extra_body,
            "top_p": top_p,
            "top_k": top_k,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        backend, opts = _options(workspace, api_key, kwargs)
        return _typed(t.Run, backend.create_run(thread_id, params, opts))  # type: ignore[no-any-return]

    @classmethod
    def call(
        cls,
        thread_id: str,
        *,
        assistant_id: str,
        model: str | None = None,
        instructions: str | None = None,
        additional_instructions: str | None = None,
        tools: Tools = None,
        stream: bool | None = False,
        metadata: JSON | None = None,
        workspace: str | None = None,
        extra_body: JSON | None = None,
        api_key: str | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        **kwargs: Any,
    ) -> t.Run | Stream:
        return cls.create(
            thread_id,
            assistant_id=assistant_id,
            model=model,
            instructions=instructions,
            additional_instructions=additional_instructions,
            tools=tools,
            metadata=metadata,
            stream=stream,
            workspace=workspace,
            extra_body=extra_body,
            api_key=api_key,
            top_p=top_p,
            top_k=top_k,
            temperature=temperature,
            max_tokens=max_tokens,
            **kwargs,
        )

    @classmethod
    def list(
        cls,
        thread_id: str,
        *,
        limit: int | None = None,
        order: str | None = None,
        after: str | None = None,
        before: str | None = None,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.RunList:
        if not thread_id:
            raise InputRequired("thread_id is required!")
        query = _query(limit, order, after, before)
        backend, opts = _options(workspace, api_key, kwargs)
        return t.RunList.from_dict(backend.list_runs(thread_id, query, opts))

    @classmethod
    def retrieve(
        cls,
        run_id: str,
        *,
        thread_id: str,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.Run:
        if not thread_id or not run_id:
            raise InputRequired("thread_id and run_id are required!")
        backend, opts = _options(workspace, api_key, kwargs)
        return t.Run.from_dict(backend.retrieve_run(thread_id, run_id, opts))

    @classmethod
    def get(
        cls,
        run_id: str,
        *,
        thread_id: str,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.Run:
        return cls.retrieve(
            run_id, thread_id=thread_id, workspace=workspace, api_key=api_key, **kwargs
        )

    @classmethod
    def submit_tool_outputs(
        cls,
        run_id: str,
        *,
        thread_id: str,
        tool_outputs: ToolOutputs,
        stream: bool | None = False,
        workspace: str | None = None,
        extra_body: JSON | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.Run | Stream:
        """Answer a ``requires_action`` run's function calls and continue the same run."""
        if not tool_outputs:
            raise InputRequired("tool_outputs is required!")
        if not thread_id or not run_id:
            raise InputRequired("thread_id and run_id are required!")
        params = {"tool_outputs": tool_outputs, "stream": stream, "extra_body": extra_body}
        backend, opts = _options(workspace, api_key, kwargs)
        reply = backend.submit_tool_outputs(thread_id, run_id, params, opts)
        return _typed(t.Run, reply)  # type: ignore[no-any-return]

    @classmethod
    def wait(
        cls,
        run_id: str,
        *,
        thread_id: str,
        timeout_seconds: float = float("inf"),
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.Run:
        """Block until the run is cancelled, failed, completed, expired or requires_action."""
        if not run_id or not thread_id:
            raise InputRequired("run_id and thread_id are required!")
        backend, opts = _options(workspace, api_key, kwargs)
        return _typed(t.Run, backend.wait_run(thread_id, run_id, timeout_seconds, opts))  # type: ignore[no-any-return]

    @classmethod
    def update(
        cls,
        run_id: str,
        *,
        thread_id: str,
        metadata: JSON | None = None,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.Run:
        if not thread_id or not run_id:
            raise InputRequired("thread id and run id are required!")
        backend, opts = _options(workspace, api_key, kwargs)
        return t.Run.from_dict(backend.update_run(thread_id, run_id, {"metadata": metadata}, opts))

    @classmethod
    def cancel(
        cls,
        run_id: str,
        *,
        thread_id: str,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.Run:
        if not thread_id or not run_id:
            raise InputRequired("thread id and run id are required!")
        backend, opts = _options(workspace, api_key, kwargs)
        return t.Run.from_dict(backend.cancel_run(thread_id, run_id, opts))

    @classmethod
    def convert_stream_object(cls, event: str | None, item: JSON) -> Any:
        """Type one raw ``(event, dict)`` stream item, as dashscope's method of the same name."""
        return t.convert_stream_item(event, item)[1]


class Steps:
    """Run steps: ``list``, ``retrieve``/``get``."""

    @classmethod
    def list(
        cls,
        run_id: str,
        *,
        thread_id: str,
        limit: int | None = None,
        order: str | None = None,
        after: str | None = None,
        before: str | None = None,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.RunStepList:
        if not run_id:
            raise InputRequired("run_id is required!")
        query = _query(limit, order, after, before)
        backend, opts = _options(workspace, api_key, kwargs)
        return t.RunStepList.from_dict(backend.list_steps(thread_id, run_id, query, opts))

    @classmethod
    def retrieve(
        cls,
        step_id: str,
        *,
        thread_id: str,
        run_id: str,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.RunStep:
        if not thread_id or not run_id or not step_id:
            raise InputRequired("thread_id, run_id and step_id are required!")
        backend, opts = _options(workspace, api_key, kwargs)
        return t.RunStep.from_dict(backend.retrieve_step(thread_id, run_id, step_id, opts))

    @classmethod
    def get(
        cls,
        step_id: str,
        *,
        thread_id: str,
        run_id: str,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.RunStep:
        return cls.retrieve(
            step_id,
            thread_id=thread_id,
            run_id=run_id,
            workspace=workspace,
            api_key=api_key,
            **kwargs,
        )
