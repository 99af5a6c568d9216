"""Scenarios described as data, for ``python -m compat.testing --scenario / --scenario-file``.

One scenario is a JSON object with exactly one *kind* key, whose value is the kind's main
argument, plus that kind's optional keys (the keyword names of :class:`Scenario`'s
constructors) and ``pace`` (seconds between streamed events)::

    {"text": "Hello!", "chunks": ["Hel", "lo!"]}
    {"function": "get_weather", "arguments": {"city": "Paris"}, "then": "It is 22C."}
    {"code": "print(2 ** 10)", "output": "1024\\n", "explanation": "Let me compute.",
     "conclusion": "2**10 is 1024."}
    {"search": "weather Hangzhou", "results": [{"type": "url", "url": "https://..."}],
     "answer": "Sunny."}
    {"failure": "server_error", "message": "boom", "after_text": "Partial", "mode": "run_failed",
     "status": null, "seconds": null, "times": 1}

Defaults differ from the constructors' where a shell user has no sensible value to give:
``function``'s ``then`` defaults to the emulator's default reply, which quotes the submitted tool
output ("The tool returned: ..."); ``code``'s ``output`` to ``""`` and its ``explanation`` to
"Let me run some code."; ``search``'s ``results`` to ``[]`` and its ``answer`` to "Here is what I
found.". ``failure`` needs ``message``.

On the command line, ``KIND:VALUE`` is the short form (``text:Hello``, ``function:NAME``,
``function:NAME:ARGUMENTS_JSON`` or ``function:NAME:ARGUMENTS_JSON:ANSWER``, ``code:CODE``,
``search:QUERY``, ``failure:CODE:MESSAGE``), and
a value starting with ``{`` is the JSON object itself. A file holds one JSON object, a JSON array
of them, or JSON lines (one object per line; blank lines and ``#`` comments are skipped).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, cast

from compat.testing.scenario import FailureMode, Scenario

__all__ = ["KINDS", "ScenarioSpecError", "parse_file", "parse_option", "scenario_from"]

JSON = dict[str, Any]


class ScenarioSpecError(ValueError):
    """A scenario description that cannot be built; the message says what to change."""


def _text(main: Any, extra: JSON) -> Scenario:
    return Scenario.text(_str(main, "text"), chunks=_opt_list(extra, "chunks"))


def _function(main: Any, extra: JSON) -> Scenario:
    arguments = extra.get("arguments", {})
    if not isinstance(arguments, (str, dict)):
        raise ScenarioSpecError("'arguments' must be a JSON object or a string of JSON")
    then = extra.get("then")
    if then is not None and not isinstance(then, str):
        raise ScenarioSpecError("'then' must be a string (or null: the default reply)")
    return Scenario.function_call(_str(main, "function"), arguments, then=then)


def _code(main: Any, extra: JSON) -> Scenario:
    return Scenario.code(
        _str(main, "code"),
        _str(extra.get("output", ""), "output"),
        _str(extra.get("explanation", "Let me run some code."), "explanation"),
        conclusion=_opt_str(extra, "conclusion"),
    )


def _search(main: Any, extra: JSON) -> Scenario:
    results = extra.get("results", [])
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise ScenarioSpecError("'results' must be a list of objects")
    answer = _str(extra.get("answer", "Here is what I found."), "answer")
    return Scenario.search(_str(main, "search"), results, answer)


def _failure(main: Any, extra: JSON) -> Scenario:
    if "message" not in extra:
        raise ScenarioSpecError("a failure needs a 'message' (short form: failure:CODE:MESSAGE)")
    status, seconds, times = extra.get("status"), extra.get("seconds"), extra.get("times", 1)
    if status is not None and not isinstance(status, int):
        raise ScenarioSpecError("'status' must be an integer HTTP status")
    if seconds is not None and not isinstance(seconds, (int, float)):
        raise ScenarioSpecError("'seconds' must be a number")
    if not isinstance(times, int):
        raise ScenarioSpecError("'times' must be an integer")
    return Scenario.failure(
        _str(main, "failure"),
        _str(extra["message"], "message"),
        after_text=_opt_str(extra, "after_text"),
        mode=cast(FailureMode, _str(extra.get("mode", "run_failed"), "mode")),
        status=status,
        seconds=seconds,
        times=times,
    )


_Builder = Callable[[Any, JSON], Scenario]
#: kind → (builder, the optional keys it takes)
_KINDS: Mapping[str, tuple[_Builder, tuple[str, ...]]] = {
    "text": (_text, ("chunks",)),
    "function": (_function, ("arguments", "then")),
    "code": (_code, ("output", "explanation", "conclusion")),
    "search": (_search, ("results", "answer")),
    "failure": (_failure, ("message", "after_text", "mode", "status", "seconds", "times")),
}
KINDS = tuple(_KINDS)


def scenario_from(spec: Any) -> Scenario:
    """The :class:`Scenario` a JSON object describes (see the module docstring)."""
    if not isinstance(spec, dict):
        raise ScenarioSpecError(f"a scenario is a JSON object, not {type(spec).__name__}")
    kinds = [key for key in spec if key in _KINDS]
    if len(kinds) != 1:
        raise ScenarioSpecError(
            f"a scenario has exactly one of the keys {', '.join(KINDS)}; got {sorted(spec)}"
        )
    kind = kinds[0]
    build, optional = _KINDS[kind]
    unknown = sorted(set(spec) - {kind, "pace", *optional})
    if unknown:
        allowed = ", ".join([*optional, "pace"])
        raise ScenarioSpecError(
            f"unknown key(s) {unknown} for a {kind} scenario; allowed: {allowed}"
        )
    extra = {key: value for key, value in spec.items() if key != kind}
    try:
        scenario = build(spec[kind], extra)
        pace = spec.get("pace")
        if pace is not None:
            if not isinstance(pace, (int, float)) or pace < 0:
                raise ScenarioSpecError("'pace' must be a number of seconds >= 0")
            scenario = scenario.paced(float(pace))
    except ScenarioSpecError:
        raise
    except ValueError as exc:  # the Scenario classes' own checks
        raise ScenarioSpecError(str(exc)) from exc
    return scenario


def parse_option(value: str) -> Scenario:
    """A ``--scenario`` value: ``KIND:VALUE`` or a JSON object."""
    if value.lstrip().startswith("{"):
        return scenario_from(_loads(value, "the --scenario JSON"))
    kind, sep, rest = value.partition(":")
    if not sep or kind not in _KINDS:
        raise ScenarioSpecError(
            f"{value!r}: expected KIND:VALUE with KIND one of {', '.join(KINDS)}, or a JSON object"
        )
    if kind == "function":
        return scenario_from(_function_option(rest))
    if kind == "failure":
        code, sep, message = rest.partition(":")
        if not sep:
            raise ScenarioSpecError(f"{value!r}: expected failure:CODE:MESSAGE")
        return scenario_from({"failure": code, "message": message})
    return scenario_from({kind: rest})


def _function_option(rest: str) -> JSON:
    """``NAME``, ``NAME:ARGUMENTS_JSON`` or ``NAME:ARGUMENTS_JSON:ANSWER`` (the answer may hold
    colons: the JSON's own end marks where it starts)."""
    name, sep, tail = rest.partition(":")
    spec: JSON = {"function": name}
    if not sep:
        return spec
    try:
        spec["arguments"], end = json.JSONDecoder().raw_decode(tail)
    except ValueError as exc:
        raise ScenarioSpecError(f"the arguments of {name!r} are not valid JSON: {exc}") from exc
    after = tail[end:]
    if after:
        if not after.startswith(":"):
            raise ScenarioSpecError(f"expected function:{name}:ARGUMENTS_JSON[:ANSWER]")
        spec["then"] = after[1:]
    return spec


def parse_file(text: str, name: str) -> list[Scenario]:
    """The scenarios of a ``--scenario-file``: one object, an array, or JSON lines."""
    try:
        whole = json.loads(text)
    except ValueError:
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                items.append(_loads(line, f"{name} line {number}"))
    else:
        items = whole if isinstance(whole, list) else [whole]
    scenarios = []
    for index, item in enumerate(items, 1):
        try:
            scenarios.append(scenario_from(item))
        except ScenarioSpecError as exc:
            raise ScenarioSpecError(f"{name}, scenario {index}: {exc}") from exc
    return scenarios


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ScenarioSpecError(f"{what} is not valid JSON: {exc}") from exc


def _str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ScenarioSpecError(f"'{key}' must be a string")
    return value


def _opt_str(extra: JSON, key: str) -> str | None:
    value = extra.get(key)
    return None if value is None else _str(value, key)


def _opt_list(extra: JSON, key: str) -> list[str] | None:
    value = extra.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ScenarioSpecError(f"'{key}' must be a list of strings")
    return value
