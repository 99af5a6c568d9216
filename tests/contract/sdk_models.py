"""Check Responses wire JSON against the openai SDK's own pydantic models, strictly.

The SDK parses streams without validation (``construct_type``) and its models allow extra
fields, so a wrong or missing field passes through it unnoticed. :func:`problems` validates one
event (or a Response) with pydantic in strict mode against the SDK model for its ``type``, and
lists every field the model does not declare, as ``"<path>: <what>"`` lines.

The SDK's unions of items and tools are not tagged for pydantic (its ``PropertyInfo``
discriminator is its own), so pydantic tries every member; the errors of members whose ``type``
is not the value's are noise and are dropped (:func:`_relevant`).
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from functools import cache
from typing import Any

import pydantic
from openai.types.responses import Response, ResponseStreamEvent

__all__ = ["problems", "response_problems"]

JSON = dict[str, Any]


def _event_members() -> tuple[type[pydantic.BaseModel], ...]:
    union = typing.get_args(ResponseStreamEvent)[0]
    return typing.get_args(union)


def _type_values(model: type[pydantic.BaseModel]) -> tuple[str, ...]:
    field = model.model_fields.get("type")
    if field is None:
        return ()
    return tuple(v for v in typing.get_args(field.annotation) if isinstance(v, str))


@cache
def _events_by_type() -> dict[str, type[pydantic.BaseModel]]:
    return {value: m for m in _event_members() for value in _type_values(m)}


def _models_in(annotation: Any) -> Iterator[type[pydantic.BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


@cache
def _models_by_name() -> dict[str, type[pydantic.BaseModel]]:
    """Every model reachable from the events (the names pydantic puts in union error paths)."""
    seen: dict[str, type[pydantic.BaseModel]] = {}
    todo = [*_event_members(), Response]
    while todo:
        model = todo.pop()
        if seen.setdefault(model.__name__, model) is not model:
            continue
        for field in model.model_fields.values():
            todo.extend(m for m in _models_in(field.annotation) if m.__name__ not in seen)
    return seen


def _relevant(loc: tuple[Any, ...], data: Any) -> bool:
    """False if ``loc`` goes through a union member whose ``type`` is not the value's."""
    node = data
    for part in loc:
        inside = isinstance(node, dict) and part in node
        if inside or (isinstance(node, list) and isinstance(part, int) and part < len(node)):
            node = node[part]
        elif isinstance(part, str) and part in _models_by_name():
            wanted = _type_values(_models_by_name()[part])
            if wanted and not (isinstance(node, dict) and node.get("type") in wanted):
                return False
        else:
            node = None
    return True


def _path(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if not (isinstance(p, str) and p in _models_by_name())]
    return ".".join(str(p) for p in parts) or "$"


def _undeclared(annotation: Any, data: Any, path: str) -> Iterator[str]:
    """Keys of ``data`` that the model ``annotation`` stands for does not declare, at any depth.

    Walks the JSON, not a parsed model, so it reports them even when validation fails. In a
    union the member is the one whose ``type`` is the value's (else the one it fits best).
    """
    if isinstance(data, list):
        for index, item in enumerate(data):
            yield from _undeclared(annotation, item, f"{path}.{index}")
        return
    if not isinstance(data, dict):
        return
    models = list(dict.fromkeys(_models_in(annotation)))
    typed = [m for m in models if data.get("type") in _type_values(m)]
    models = typed or models
    if not models:
        return  # a free-form dict (metadata, JSON-schema parameters, ...)

    def declared(model: type[pydantic.BaseModel]) -> dict[str, Any]:
        return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}

    model = min(models, key=lambda m: len(data.keys() - declared(m).keys()))
    fields = declared(model)
    for key, value in data.items():
        if key not in fields:
            yield f"{path}.{key}: not declared by {model.__name__}"
        else:
            yield from _undeclared(fields[key], value, f"{path}.{key}")


def _check(model: type[pydantic.BaseModel], data: JSON) -> list[str]:
    found = {line.removeprefix("$.") for line in _undeclared(model, data, "$")}
    try:
        model.model_validate_json(json.dumps(data), strict=True)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False)
        kept = [e for e in errors if _relevant(e["loc"], data)] or errors
        found.update(f"{_path(e['loc'])}: {e['type']} ({e['msg']})" for e in kept)
    return sorted(found)


def problems(event: JSON) -> list[str]:
    """What the SDK's model of ``event["type"]`` finds wrong or undeclared in ``event``."""
    model = _events_by_type().get(str(event.get("type")))
    if model is None:
        return [f"type: {event.get('type')!r} is no event type of the SDK"]
    return _check(model, event)


def response_problems(response: JSON) -> list[str]:
    """The same for a Response object (a non-streamed answer, or a terminal event's)."""
    return _check(Response, response)
