"""Typed option schemas: frozen dataclasses whose fields carry a doc line and bounds, built from plain
mappings (a composed Hydra config) with one-line errors that name the key and what is allowed.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Shrink:
    ...     shrink: float = option(0.8, "interpolation weight towards theta_0", ge=0.0, le=1.0)
    >>> build(Shrink, {"shrink": 0.5}, "reinit")
    Shrink(shrink=0.5)
    >>> build(Shrink, {"shrink": 1.5}, "reinit")
    Traceback (most recent call last):
    ...
    ValueError: reinit.shrink=1.5 must be a number in [0.0, 1.0]
    >>> build(Shrink, {"shrinkage": 0.5}, "reinit")
    Traceback (most recent call last):
    ...
    ValueError: reinit.shrinkage is unknown; allowed: shrink

Supported field types: bool, int, float, str, Literal[...], list[T], a dataclass (nested keys), a union
of dataclasses told apart by their `kind` Literal field, and any of these `| None`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

_NO_DEFAULT = dataclasses.MISSING


def option(default: Any = _NO_DEFAULT, doc: str = "", *, ge: float | None = None, gt: float | None = None,
           le: float | None = None, lt: float | None = None) -> Any:
    """A dataclass field with a one-line doc (shown by `train.py --help`) and numeric bounds."""
    metadata = {"doc": doc, "bounds": (ge, gt, le, lt)}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _variants(hint: Any) -> tuple[list[Any], bool]:
    """(the non-None members of a union, whether None is allowed)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = list(typing.get_args(hint))
        return [m for m in members if m is not type(None)], type(None) in members
    return [hint], False


def _kind_of(cls: type) -> Any:
    return typing.get_args(typing.get_type_hints(cls)["kind"])[0]


def _describe_type(hint: Any) -> str:
    variants, nullable = _variants(hint)
    words = []
    for v in variants:
        if typing.get_origin(v) is Literal:
            words.append(" | ".join(str(a) for a in typing.get_args(v)))
        elif dataclasses.is_dataclass(v):
            words.append(f"{v.__name__} (kind: {_kind_of(v)})" if "kind" in typing.get_type_hints(v) else v.__name__)
        elif typing.get_origin(v) is list:
            words.append(f"list of {_describe_type(typing.get_args(v)[0])}")
        else:
            words.append(getattr(v, "__name__", str(v)))
    return " | ".join(words) + (" | null" if nullable else "")


def _bounds_text(bounds: tuple) -> str:
    ge, gt, le, lt = bounds
    if ge is not None and le is not None:
        return f"in [{ge}, {le}]"
    if gt is not None and le is not None:
        return f"in ({gt}, {le}]"
    parts = [f"{op} {v}" for op, v in ((">=", ge), (">", gt), ("<=", le), ("<", lt)) if v is not None]
    return " and ".join(parts)


def _within(value: float, bounds: tuple) -> bool:
    ge, gt, le, lt = bounds
    return ((ge is None or value >= ge) and (gt is None or value > gt)
            and (le is None or value <= le) and (lt is None or value < lt))


def _convert(hint: Any, value: Any, path: str, bounds: tuple = (None,) * 4) -> Any:
    variants, nullable = _variants(hint)
    if value is None:
        if nullable:
            return None
        raise ValueError(f"{path}=null is not allowed; allowed: {_describe_type(hint)}")
    classes = [v for v in variants if dataclasses.is_dataclass(v)]
    if classes:
        if not isinstance(value, Mapping):
            raise ValueError(f"{path}={value!r} must be a mapping of keys ({_describe_type(hint)})")
        if len(classes) > 1:
            kinds = {_kind_of(c): c for c in classes}
            if value.get("kind") not in kinds:
                raise ValueError(f"{path}.kind={value.get('kind')!r} is unknown; allowed: {', '.join(kinds)}")
            return build(kinds[value["kind"]], value, path)
        return build(classes[0], value, path)
    failures = []
    for v in variants:
        origin = typing.get_origin(v)
        if origin is Literal:
            if value in typing.get_args(v) and type(value) is type(typing.get_args(v)[0]):
                return value
        elif origin is list:
            if isinstance(value, list | tuple):
                return [_convert(typing.get_args(v)[0], item, f"{path}[{i}]", bounds) for i, item in enumerate(value)]
        elif v is bool:
            if isinstance(value, bool):
                return value
        elif v is int:
            if isinstance(value, int) and not isinstance(value, bool):
                if _within(value, bounds):
                    return value
                failures.append(f"an integer {_bounds_text(bounds)}")
                continue
        elif v is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                if _within(value, bounds):
                    return float(value)
                failures.append(f"a number {_bounds_text(bounds)}")
                continue
        elif v is str:
            if isinstance(value, str):
                return value
        else:
            raise TypeError(f"{path}: field type {v!r} is not supported by fire.options")
    if failures:
        raise ValueError(f"{path}={value!r} must be {' or '.join(failures)}")
    raise ValueError(f"{path}={value!r} is not allowed; allowed: {_describe_type(hint)}")


def build(cls: type, values: Mapping[str, Any], path: str) -> Any:
    """cls(**values) with every key checked: unknown and missing keys, types, Literal choices, bounds."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = [key for key in values if key not in fields]
    if unknown:
        raise ValueError(f"{path}.{unknown[0]} is unknown; allowed: {', '.join(fields) or 'no keys'}")
    missing = [name for name, f in fields.items() if name not in values
               and f.default is _NO_DEFAULT and f.default_factory is _NO_DEFAULT]
    if missing:
        raise ValueError(f"{path}: missing key(s) {', '.join(missing)}")
    kwargs = {name: _convert(hints[name], value, f"{path}.{name}", fields[name].metadata.get("bounds", (None,) * 4))
              for name, value in values.items()}
    return cls(**kwargs)


def describe(cls: type, path: str) -> list[str]:
    """One help line per key of cls (nested dataclasses expanded): `path.key: type, bounds (default) - doc`."""
    lines = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        nested = [v for v in _variants(hint)[0] if dataclasses.is_dataclass(v)]
        if nested:
            for variant in nested:
                lines.extend(describe(variant, f"{path}.{f.name}"))
            continue
        bounds = _bounds_text(f.metadata.get("bounds", (None,) * 4))
        default = "" if f.default is _NO_DEFAULT else f" (default {'null' if f.default is None else f.default})"
        kind = _describe_type(hint) + (f" {bounds}" if bounds else "")
        lines.append(f"  {path}.{f.name}: {kind}{default}  {f.metadata.get('doc', '')}".rstrip())
    return lines
