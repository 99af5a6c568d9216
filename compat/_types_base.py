"""The base of compat's DashScope-shaped objects: cheap to build from dicts, read like dicts."""

from __future__ import annotations

import inspect
import reprlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, TypeVar

__all__ = [
    "OBJECT_TYPES",
    "BaseObject",
    "ListObject",
    "by_type",
    "each",
    "object_if_truthy",
    "to_object",
]

_T = TypeVar("_T", bound="BaseObject")

#: ``"object"`` value → type, for dict values that no class declares as nested. Filled in by
#: ``compat.types``; dashscope converts these wherever they appear (``base_type.get_object_type``).
OBJECT_TYPES: dict[str, type[BaseObject]] = {}


class BaseObject:
    """An object built from a JSON-like dict, read like dashscope's objects.

    Construction stores the fields as instance attributes, converts the keys named in ``_nested``
    and any other dict value whose ``"object"`` names a type in ``OBJECT_TYPES``. Values are not
    copied. Keys the wire does not carry get the class default when the class declares one, a
    fresh value from ``_absent`` for the few mutable ones, and otherwise raise ``AttributeError``
    on read, as in dashscope (``Assistant.id`` on an error reply).

    Item access mirrors attribute access (``obj["k"]`` raises ``AttributeError`` like dashscope's,
    ``"k" in obj`` is ``hasattr``). Additions over dashscope: ``get()``, ``to_dict()``, a ``repr``
    that never raises, and a ``TypeError`` with a clear message when iterated.
    """

    #: key → converter applied to that key's value when present (the value may be None).
    _nested: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    #: key → factory for a key dashscope always sets even when the wire lacks it (``tools=[]``).
    _absent: ClassVar[dict[str, Callable[[], Any]]] = {}
    #: declared fields with a default, in declaration order (computed per subclass).
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        defaults: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            own = vars(klass)
            for name in inspect.get_annotations(klass):
                if not name.startswith("_") and name in own:
                    defaults[name] = own[name]
        cls._defaults = defaults

    def __init__(self, **fields: Any) -> None:
        _fill(self, fields)

    @classmethod
    def from_dict(cls: type[_T], data: Mapping[str, Any]) -> _T:
        """Build from a wire dict: ``cls(**data)``, minus the keyword-argument copy."""
        obj = cls.__new__(cls)
        _fill(obj, data)
        return obj

    def get(self, key: str, default: Any = None) -> Any:
        """The field's value, or ``default`` when the object lacks it (dashscope has no ``get``)."""
        return getattr(self, key, default)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def __delitem__(self, key: str) -> None:
        delattr(self, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and hasattr(self, key)

    def __iter__(self) -> Iterator[Any]:
        # Without this, Python falls back to __getitem__(0) and fails with a confusing message.
        name = type(self).__name__
        raise TypeError(f"{name!r} object is not iterable; read its fields as attributes")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-like dicts and lists, recursively: present fields, then unset defaults."""
        out = {k: _plain(v) for k, v in self.__dict__.items() if not k.startswith("__")}
        for key, value in self._defaults.items():
            if key not in out:
                out[key] = _plain(value)
        return out

    def __str__(self) -> str:
        return str(self.to_dict())

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        name = type(self).__name__
        try:
            parts = [f"{k}={v!r}" for k, v in self.__dict__.items() if not k.startswith("__")]
        except Exception:  # a field's own repr failed; ours must not
            return f"<{name} object at {id(self):#x}>"
        return f"{name}({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BaseObject) or type(other) is not type(self):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, as dashscope's


class ListObject(BaseObject):
    """A page of objects (``data``); iterating and ``len()`` go over ``data``.

    dashscope's list objects cannot be iterated (``for a in Assistants.list()`` raises); here it
    works and yields the ``data`` items. Truthiness stays that of any object (always true), not
    ``len(data) > 0``, so ``if not res:`` means what it meant with dashscope; ``"k" in page``
    still asks for a field, not for an item.
    """

    has_more: bool | None = None
    first_id: str | None = None
    last_id: str | None = None
    status_code: int
    data: list[Any]

    _absent: ClassVar[dict[str, Callable[[], Any]]] = {"data": list}

    def __iter__(self) -> Iterator[Any]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __bool__(self) -> bool:
        return True


def _fill(obj: BaseObject, fields: Mapping[str, Any]) -> None:
    # The hot path: it runs for every object of every stream event, so it stays flat.
    attrs = obj.__dict__
    attrs.update(fields)
    nested = obj._nested
    for key, value in fields.items():
        if key in nested:
            attrs[key] = nested[key](value)
        elif value.__class__ is dict and "object" in value:
            kind = value["object"]
            cls = OBJECT_TYPES.get(kind) if kind.__class__ is str else None
            if cls is not None:
                attrs[key] = cls.from_dict(value)
    absent = obj._absent
    if absent:
        for key, make in absent.items():
            if key not in fields:
                attrs[key] = make()


def _plain(value: Any) -> Any:
    if isinstance(value, BaseObject):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


_Converter = Callable[[Any], Any]


# Converters for ``_nested`` tables. Each leaves a value it does not recognise (None, a
# non-dict, an object that is already built) unchanged, so a backend may pass objects as well.


def to_object(cls: type[BaseObject]) -> _Converter:
    """A dict, even empty, becomes ``cls``."""

    def convert(value: Any) -> Any:
        return cls.from_dict(value) if isinstance(value, dict) else value

    return convert


def object_if_truthy(cls: type[BaseObject], *, empty_to_none: bool) -> _Converter:
    """A non-empty dict becomes ``cls``; an empty one stays, or is None (dashscope's ``if v``)."""

    def convert(value: Any) -> Any:
        if not value:
            return None if empty_to_none else value
        return cls.from_dict(value) if isinstance(value, dict) else value

    return convert


def by_type(table: dict[str, type[BaseObject]]) -> _Converter:
    """A dict whose ``type`` is in ``table`` becomes that class; any other item stays as it is."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            kind = value.get("type")
            cls = table.get(kind) if isinstance(kind, str) else None
            if cls is not None:
                return cls.from_dict(value)
        return value

    return convert


def each(convert: _Converter) -> _Converter:
    """A list has ``convert`` applied to every item."""

    def convert_list(value: Any) -> Any:
        return [convert(item) for item in value] if isinstance(value, list) else value

    return convert_list
