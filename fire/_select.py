"""Layer selection shared by every intervention: include/exclude by type, name pattern or predicate."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from torch import nn

Predicate = Callable[[str, nn.Module], bool]
Selector = Sequence[type[nn.Module] | str] | Predicate | type[nn.Module] | str | None


def as_predicate(selector: Selector, argument: str) -> Predicate | None:
    """Turn an include/exclude argument into a predicate on (qualified name, module); None stays None.

    A sequence mixes nn.Module subclasses (isinstance) and fnmatch patterns on qualified module names
    ("*.to_q"); a single class or pattern is accepted as a one-item sequence.
    """
    if selector is None:
        return None
    if callable(selector) and not isinstance(selector, type):
        return selector
    if isinstance(selector, str | type):
        selector = [selector]
    types, patterns = [], []
    for item in selector:
        if isinstance(item, str):
            patterns.append(item)
        elif isinstance(item, type) and issubclass(item, nn.Module):
            types.append(item)
        else:
            raise ValueError(
                f"{argument}: items must be nn.Module subclasses or fnmatch patterns (str), got {item!r}"
            )
    module_types = tuple(types)

    def matches(name: str, module: nn.Module) -> bool:
        return isinstance(module, module_types) or any(fnmatchcase(name, p) for p in patterns)

    return matches


def select_modules(
    root: nn.Module, include: Selector, exclude: Selector, default: Predicate
) -> list[tuple[str, nn.Module]]:
    """Submodules of root (qualified name, module), in registration order, that include/exclude pick.

    include=None means `default`; an explicit include replaces it.
    """
    keep = as_predicate(include, "include") or default
    drop = as_predicate(exclude, "exclude")
    return [
        (name, m)
        for name, m in root.named_modules()
        if keep(name, m) and not (drop is not None and drop(name, m))
    ]


@dataclass
class OwnedParameter:
    """One Parameter to transform, with the module that owns it and every qualified name it goes by."""

    name: str  # first qualified name, e.g. "encoder.0.weight"
    module: nn.Module
    attr: str  # attribute name on module, e.g. "weight"
    param: nn.Parameter
    aliases: list[str] = field(default_factory=list)  # further names of a tied Parameter


def owned_parameters(
    modules: list[tuple[str, nn.Module]], attrs: Sequence[str] | None = None
) -> Iterator[OwnedParameter]:
    """Parameters owned directly by the given modules, each Parameter once (tied ones get aliases).

    attrs restricts to those attribute names (e.g. ("weight",)); None means every direct parameter.
    """
    seen: dict[int, OwnedParameter] = {}
    for module_name, module in modules:
        for attr, param in module.named_parameters(recurse=False):
            if attrs is not None and attr not in attrs:
                continue
            name = f"{module_name}.{attr}" if module_name else attr
            if id(param) in seen:
                seen[id(param)].aliases.append(name)
            else:
                seen[id(param)] = OwnedParameter(name, module, attr, param)
    yield from seen.values()


def require_nonempty(selected: list, function: str) -> None:
    if not selected:
        raise ValueError(f"{function}: include/exclude selected no layer to change")
