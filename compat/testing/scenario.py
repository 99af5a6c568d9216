"""Scripted model behaviour for the emulator, independent of any wire format.

A :class:`Scenario` is what "the model" does during one run: a list of :class:`Turn` objects, each
one model response made of ordered items (:class:`Text`, :class:`Reasoning`,
:class:`CodeInterpreter`, :class:`Search`, :class:`FunctionCall`, :class:`Failure`). Each API
emulation renders the same turns in its own wire format (Assistant-API events in
``assistants_events``, Responses events in ``responses_events``), so one scenario is the same
conversation on both.

Rules (checked when a scenario is built):

* function calls come last in their turn; a turn ending with function calls pauses the run until
  the tool outputs are submitted, then the next turn plays. Every turn but the last must end so.
* a :class:`Failure` is the last item of the last turn; the item just before it is left open (a
  message ends ``incomplete``, a tool step ``failed``). ``mode="http_error"`` and
  ``mode="rate_limited_json"`` answer the request itself, so they must be alone in their turn.

When no scenario is queued, or a run needs more turns than its scenario has, :func:`default_turn`
answers deterministically from the conversation.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

__all__ = [
    "CodeInterpreter",
    "Conversation",
    "Failure",
    "FailureMode",
    "FunctionCall",
    "Item",
    "Reasoning",
    "Scenario",
    "ScenarioQueue",
    "Script",
    "Search",
    "Text",
    "Turn",
    "default_turn",
    "estimate_usage",
    "split_lines",
    "split_words",
]

FailureMode = Literal[
    "run_failed",
    "error_event",
    "http_error",
    "error_event_flat",
    "incomplete",
    "rate_limited_json",
    "drop",
    "truncate",
    "malformed",
    "stall",
]
_FAILURE_MODES = get_args(FailureMode)
#: Modes that answer the whole request instead of ending a stream: alone in their Turn.
_WHOLE_REQUEST_MODES = ("http_error", "rate_limited_json")

_WORDISH = re.compile(r"\S+\s*|\s+")


def split_words(text: str) -> tuple[str, ...]:
    """Word-ish stream chunks: ``"Hello, world"`` → ``("Hello, ", "world")``."""
    return tuple(_WORDISH.findall(text))


def split_lines(text: str) -> tuple[str, ...]:
    """Line chunks with their line ends kept; they join to ``text``."""
    return tuple(text.splitlines(keepends=True))


def _checked_chunks(text: str, chunks: Sequence[str] | None, what: str) -> tuple[str, ...] | None:
    if chunks is None:
        return None
    chunks = tuple(chunks)
    if "".join(chunks) != text:
        raise ValueError(f"{what} chunks must join to the full text")
    return chunks


@dataclass(frozen=True)
class Text:
    """Assistant text, streamed as ``chunks`` (default: :func:`split_words`)."""

    text: str
    chunks: Sequence[str] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "chunks", _checked_chunks(self.text, self.chunks, "Text"))

    def pieces(self) -> tuple[str, ...]:
        return tuple(self.chunks) if self.chunks is not None else split_words(self.text)


@dataclass(frozen=True)
class Reasoning:
    """Model reasoning: a Responses ``reasoning`` item; invisible on the Assistant side."""

    text: str


@dataclass(frozen=True)
class CodeInterpreter:
    """A code_interpreter call: ``code``, streamed as ``code_chunks`` (default: lines)."""

    code: str
    output: str
    code_chunks: Sequence[str] | None = None

    def __post_init__(self) -> None:
        chunks = _checked_chunks(self.code, self.code_chunks, "CodeInterpreter")
        object.__setattr__(self, "code_chunks", chunks)

    def pieces(self) -> tuple[str, ...]:
        if self.code_chunks is not None:
            return tuple(self.code_chunks)
        return split_lines(self.code) or (self.code,)


@dataclass(frozen=True)
class Search:
    """A web search (``quark_search`` on the Assistant side) for ``query`` returning ``results``."""

    query: str
    results: list[dict[str, Any]]

    def arguments(self) -> str:
        return json.dumps({"query": self.query}, ensure_ascii=False)

    def output(self) -> str:
        return json.dumps(self.results, ensure_ascii=False)


@dataclass(frozen=True)
class FunctionCall:
    """A client-side function call; ``call_id=None`` gets a fresh ``call_<hex>`` when played."""

    name: str
    arguments: str
    call_id: str | None = None


@dataclass(frozen=True)
class Failure:
    """The model call fails with ``code``/``message``.

    ``mode`` (the Responses rendering is in ``responses_events``). The modes marked "Responses
    only" have no Assistant-API form: the Assistant side plays them as ``"run_failed"`` with the
    same code and message, which is also how compat reports Responses transport failures.

    * ``"run_failed"``: the run ends ``failed`` with ``last_error`` (Responses:
      ``response.failed``).
    * ``"error_event"``: the run is stored as with ``"run_failed"`` (its open message
      ``incomplete``, its open step ``failed``), but the stream sends only a raw ``error`` event
      (``{"code","message","request_id"}``; no ``done``), then closes (Responses: the nested
      ``{"type":"error","error":{...}}`` form, on which the openai SDK raises ``APIError``).
    * ``"http_error"``: the request itself answers HTTP ``status`` with DashScope's top-level
      error body; ``times`` consecutive requests fail so (the openai SDK retries 408/409/429/5xx
      twice, so ``times=3`` fails every attempt). Codes to use: 400 ``InvalidParameter``, 401
      ``InvalidApiKey`` (both documented), 429 ``Throttling.RateQuota``, 500 ``InternalError``
      (DashScope's native API), 404 ``ModelNotFound`` (inferred).
    * ``"error_event_flat"``: Responses only: a flat ``{"type":"error","code",...}`` event (the
      SDK's schema; no exception), then ``response.failed``.
    * ``"incomplete"``: Responses only: the open item ends ``incomplete``, then
      ``response.incomplete`` with ``incomplete_details.reason = code`` (e.g.
      ``max_output_tokens``).
    * ``"rate_limited_json"``: Responses only: HTTP 200 with a JSON Response ``status: failed``
      instead of a stream (DashScope's rate limit: ``code="server_error"``, ``message="Requests rate
      limit exceeded, please try again later."``). The Assistant side: ``created``, ``queued``,
      ``in_progress``, ``failed``, no message or step.
    * ``"drop"``: Responses only: the connection breaks mid-stream (no terminal event).
    * ``"truncate"``: Responses only: the stream ends cleanly without a terminal event.
    * ``"malformed"``: Responses only: one more event whose data is ``message`` as it is, not
      JSON (a proxy's error page, say), then the stream ends. Lone surrogates ``\\udc80`` to
      ``\\udcff`` in ``message`` are sent as those raw bytes, so a test can send bytes that are
      not UTF-8.
    * ``"stall"``: Responses only: nothing is sent for ``seconds``, then the turn completes (a
      client with a shorter read timeout gives up).
    """

    code: str
    message: str
    mode: FailureMode = "run_failed"
    status: int | None = None
    seconds: float | None = None
    times: int = 1

    def __post_init__(self) -> None:
        if self.mode not in _FAILURE_MODES:
            raise ValueError(f"Failure mode must be one of {_FAILURE_MODES}, not {self.mode!r}")
        if (self.mode == "http_error") != (self.status is not None):
            raise ValueError(
                'Failure(status=...) is required with mode="http_error", and only there'
            )
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError("Failure status must be an HTTP error status (400-599)")
        if (self.mode == "stall") != (self.seconds is not None):
            raise ValueError('Failure(seconds=...) is required with mode="stall", and only there')
        if self.seconds is not None and not self.seconds >= 0:
            raise ValueError("Failure seconds must be >= 0")
        if self.times < 1 or (self.times != 1 and self.mode != "http_error"):
            raise ValueError('Failure(times=N) needs N >= 1, and N > 1 only with mode="http_error"')

    @property
    def whole_request(self) -> bool:
        """The failure answers the request itself (no stream), so it is alone in its Turn."""
        return self.mode in _WHOLE_REQUEST_MODES


Item = Text | Reasoning | CodeInterpreter | Search | FunctionCall | Failure


@dataclass(frozen=True)
class Turn:
    """One model response: ``items`` in order, and ``usage`` as ``(prompt, completion)`` tokens.

    ``usage=None`` means :func:`estimate_usage` of the conversation and of the turn's output.
    """

    items: Sequence[Item]
    usage: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        items = tuple(self.items)
        object.__setattr__(self, "items", items)
        if not items:
            raise ValueError("a Turn needs at least one item")
        kinds = [type(item) for item in items]
        calls = kinds.count(FunctionCall)
        if calls and FunctionCall in kinds[: len(kinds) - calls]:
            raise ValueError("FunctionCall items must come last in their Turn")
        if Failure in kinds[:-1]:
            raise ValueError("a Failure must be the last item of its Turn")
        last = items[-1]
        if isinstance(last, Failure) and last.whole_request and len(items) > 1:
            raise ValueError(f'a Failure(mode="{last.mode}") must be alone in its Turn')

    @property
    def function_calls(self) -> tuple[FunctionCall, ...]:
        return tuple(item for item in self.items if isinstance(item, FunctionCall))

    @property
    def failure(self) -> Failure | None:
        last = self.items[-1]
        return last if isinstance(last, Failure) else None

    def output_chars(self) -> int:
        """Characters the model generated (text, reasoning, code, queries, call arguments)."""
        total = 0
        for item in self.items:
            if isinstance(item, (Text, Reasoning)):
                total += len(item.text)
            elif isinstance(item, CodeInterpreter):
                total += len(item.code)
            elif isinstance(item, Search):
                total += len(item.query)
            elif isinstance(item, FunctionCall):
                total += len(item.name) + len(item.arguments)
        return total

    def transcript(self) -> list[tuple[str, str]]:
        """What the turn adds to the conversation, as ``(role, text)`` entries.

        Function outputs are not here: they arrive with the next request.
        """
        entries: list[tuple[str, str]] = []
        for item in self.items:
            if isinstance(item, Text):
                entries.append(("assistant", item.text))
            elif isinstance(item, CodeInterpreter):
                entries += [("assistant", item.code), ("tool", item.output)]
            elif isinstance(item, Search):
                entries += [("assistant", item.query), ("tool", item.output())]
            elif isinstance(item, FunctionCall):
                entries.append(("assistant", f"{item.name}({item.arguments})"))
        return entries

    def usage_for(self, conversation: Conversation) -> tuple[int, int]:
        if self.usage is not None:
            return self.usage
        return estimate_usage(conversation.input_chars(), self.output_chars())


def estimate_usage(input_chars: int, output_chars: int) -> tuple[int, int]:
    """The emulator's token rule: ``(input_chars // 4 + 1, output_chars // 4 + 1)``."""
    return input_chars // 4 + 1, output_chars // 4 + 1


@dataclass(frozen=True)
class Scenario:
    """What the model does during one run (see the module docstring for the rules).

    ``pace`` (seconds) makes a streamed reply wait that long between events; by default a stream is
    written at once.
    """

    turns: Sequence[Turn]
    pace: float | None = None

    def __post_init__(self) -> None:
        turns = tuple(self.turns)
        object.__setattr__(self, "turns", turns)
        if not turns:
            raise ValueError("a Scenario needs at least one Turn")
        for turn in turns[:-1]:
            if not isinstance(turn.items[-1], FunctionCall):
                raise ValueError("every Turn but the last must end with FunctionCall items")

    def paced(self, seconds: float) -> Scenario:
        """The same scenario, streamed with ``seconds`` between events."""
        return replace(self, pace=seconds)

    @classmethod
    def of(cls, *items: Item, usage: tuple[int, int] | None = None) -> Scenario:
        """A one-turn scenario of ``items``."""
        return cls([Turn(items, usage)])

    @classmethod
    def text(cls, text: str, *, chunks: Sequence[str] | None = None) -> Scenario:
        """The model answers ``text``."""
        return cls.of(Text(text, chunks))

    @classmethod
    def code(
        cls, code: str, output: str, explanation: str, *, conclusion: str | None = None
    ) -> Scenario:
        """An explanation, a code_interpreter run printing ``output``, an optional conclusion."""
        items: list[Item] = [Text(explanation), CodeInterpreter(code, output)]
        if conclusion is not None:
            items.append(Text(conclusion))
        return cls.of(*items)

    @classmethod
    def search(cls, query: str, results: list[dict[str, Any]], answer: str) -> Scenario:
        """A web search for ``query``, then ``answer``."""
        return cls.of(Search(query, results), Text(answer))

    @classmethod
    def function_call(
        cls, name: str, arguments: str | Mapping[str, Any], *, then: str | None = "answer"
    ) -> Scenario:
        """A call of ``name``; after the tool output is submitted the model answers ``then``.

        ``then=None`` leaves the answer to :func:`default_turn`.
        """
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        turns = [Turn([FunctionCall(name, arguments)])]
        if then is not None:
            turns.append(Turn([Text(then)]))
        return cls(turns)

    @classmethod
    def failure(
        cls,
        code: str,
        message: str,
        *,
        after_text: str | None = None,
        mode: FailureMode = "run_failed",
        status: int | None = None,
        seconds: float | None = None,
        times: int = 1,
    ) -> Scenario:
        """The model fails with ``code``/``message``, optionally after streaming ``after_text``."""
        items: list[Item] = [] if after_text is None else [Text(after_text)]
        items.append(Failure(code, message, mode, status, seconds, times))
        return cls.of(*items)


@dataclass(frozen=True)
class Conversation:
    """What the model sees for a turn: instructions, ``(role, text)`` messages, tool types.

    Roles are ``user``, ``assistant`` and ``tool`` (tool and function outputs).
    """

    messages: Sequence[tuple[str, str]]
    instructions: str = ""
    tools: Sequence[str] = ()

    def input_chars(self) -> int:
        return len(self.instructions) + sum(len(text) for _, text in self.messages)

    def last(self, role: str | None = None) -> str | None:
        """The text of the last message (of ``role``, if given)."""
        for message_role, text in reversed(self.messages):
            if role is None or message_role == role:
                return text
        return None


_TUTOR_CODE = """\
import math

for step in range(9):
    x = step * math.pi / 4
    bar = "#" * round(10 * (math.sin(x) + 1))
    print(f"x = {x:5.3f}  sin(x) = {math.sin(x):+.3f}  |{bar}")
"""

# The real stdout of _TUTOR_CODE (CPython 3.11).
_TUTOR_OUTPUT = """\
x = 0.000  sin(x) = +0.000  |##########
x = 0.785  sin(x) = +0.707  |#################
x = 1.571  sin(x) = +1.000  |####################
x = 2.356  sin(x) = +0.707  |#################
x = 3.142  sin(x) = +0.000  |##########
x = 3.927  sin(x) = -0.707  |###
x = 4.712  sin(x) = -1.000  |
x = 5.498  sin(x) = -0.707  |###
x = 6.283  sin(x) = -0.000  |##########
"""


def default_turn(conversation: Conversation) -> Turn:
    """The deterministic reply when nothing scripted is left.

    With ``code_interpreter`` among the tools: a short tutoring turn (explanation, a code run with
    its real output, a conclusion). Otherwise one text that answers the last message by quoting it.
    """
    if conversation.messages and conversation.messages[-1][0] == "tool":
        return Turn([Text(f"The tool returned: {conversation.messages[-1][1]}")])
    question = (conversation.last("user") or "").strip()
    if "code_interpreter" in conversation.tools:
        topic = question.splitlines()[0] if question else "your question"
        return Turn(
            [
                Text(
                    f"Let's work through this step by step: {topic}\n"
                    "The sine function maps an angle x (in radians) to the height of the point at "
                    "that angle on the unit circle. Let me compute a few values with Python."
                ),
                CodeInterpreter(_TUTOR_CODE, _TUTOR_OUTPUT),
                Text(
                    "The values rise from 0 to 1 at x = pi/2, fall to -1 at x = 3pi/2 and return "
                    "to 0 at x = 2pi: one full period of the sine wave."
                ),
            ]
        )
    if not question:
        return Turn([Text("Hello! How can I help you today?")])
    return Turn([Text(f'You said: "{question}". This is the emulator\'s deterministic answer.')])


class Script:
    """The turns a run (or a chain of Responses requests) still has to play."""

    def __init__(
        self, scenario: Scenario | None = None, seen: list[Conversation] | None = None
    ) -> None:
        self.pace = scenario.pace if scenario is not None else None
        self._turns: deque[Turn] = deque(scenario.turns if scenario is not None else ())
        self._seen = seen

    def take_http_error(self) -> Failure | None:
        """Consume and return the next turn if it is an HTTP-level failure.

        A failure with ``times > 1`` stays, one fewer, for the next request.
        """
        if self._turns:
            failure = self._turns[0].failure
            if failure is not None and failure.mode == "http_error":
                self._turns.popleft()
                if failure.times > 1:
                    self._turns.appendleft(Turn([replace(failure, times=failure.times - 1)]))
                return failure
        return None

    def next_turn(self, conversation: Conversation) -> Turn:
        """The next scripted turn, else :func:`default_turn` of ``conversation``."""
        if self._seen is not None:
            self._seen.append(conversation)
        return self._turns.popleft() if self._turns else default_turn(conversation)


class ScenarioQueue:
    """Thread-safe FIFO of queued scenarios, shared by both API emulations."""

    def __init__(self) -> None:
        self._items: deque[Scenario] = deque()
        self._lock = threading.Lock()
        #: what the model saw at each turn, on either API, oldest first
        self.seen: list[Conversation] = []

    def put(self, scenarios: Iterable[Scenario]) -> None:
        with self._lock:
            for scenario in scenarios:
                if not isinstance(scenario, Scenario):
                    raise TypeError(f"expected a Scenario, got {type(scenario).__name__}")
                self._items.append(scenario)

    def take(self) -> Script:
        """A script for the next run: the oldest queued scenario, else the default behaviour.

        A scenario that is an HTTP failure with ``times > 1`` stays queued, one fewer.
        """
        with self._lock:
            if not self._items:
                return Script(None, self.seen)
            scenario = self._items.popleft()
            failure = scenario.turns[0].failure
            if failure is not None and failure.mode == "http_error" and failure.times > 1:
                again = Turn([replace(failure, times=failure.times - 1)])
                self._items.appendleft(replace(scenario, turns=[again]))
            return Script(scenario, self.seen)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.seen.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
