"""Stage registry: short names -> stage classes.

Stages register themselves with `@register`. Discovery imports every module of the `stages`
package and any plugin declared under the `curation_pipeline.stages` entry-point group, so a
spec can only name stages that are installed; it never supplies an import string.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points

from pipeline.stage import Stage

_REGISTRY: dict[str, type[Stage]] = {}
_discovered = False


def register(cls: type[Stage]) -> type[Stage]:
    name = cls.name
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"two stages are registered as {name!r}: "
                         f"{_REGISTRY[name].__module__} and {cls.__module__}")
    _REGISTRY[name] = cls
    return cls


def discover() -> None:
    global _discovered
    if _discovered:
        return
    import stages

    for module in pkgutil.iter_modules(stages.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"stages.{module.name}")
    for plugin in entry_points(group="curation_pipeline.stages"):
        plugin.load()
    _discovered = True


def get_stage_class(name: str) -> type[Stage] | None:
    discover()
    return _REGISTRY.get(name)


def all_stages() -> dict[str, type[Stage]]:
    discover()
    return dict(sorted(_REGISTRY.items()))
