"""Name → registered object, per kind, built from the plugin hooks on first use (rebuilt for a new plugin manager)."""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from typing import Any

from .environment_files import EnvironmentSource
from .errors import PluginConflictError, UnknownNameError
from .plugins import get_plugin_manager
from .value_set_source import ValueSetSource

KINDS = {
    "value_set": "register_value_sets",
    "task": "register_tasks",
    "representation": "register_representations",
    "model": "register_models",
    "environment": "register_environments",
}


@dataclass(frozen=True)
class Entry:
    """A registered object and the plugin that registered it."""

    name: str
    obj: Any
    plugin: str
    description: str = ""


_registries: dict[str, dict[str, Entry]] = {}
_built_from = None  # the plugin manager the cached registries were built from

#: The metadata class a registered task or representation declares, and the README section that shows how.
METADATA = {"task": "TaskMetadata", "representation": "RepresentationMetadata", "model": "ModelMetadata"}
HOW_TO = {"task": "Write a task plugin", "representation": "Write a representation plugin",
          "model": "Write a model plugin"}


def _has_metadata(kind: str, obj: Any) -> bool:
    """Whether a task, representation or model class declares its own metadata of the right kind."""
    meta = vars(obj).get("metadata") if isinstance(obj, type) else None
    # named rather than imported: vgbench.api resolves models through this registry
    return any(c.__module__ == "vgbench.api" and c.__name__ == METADATA[kind] for c in type(meta).__mro__)


def _name_of(obj: Any) -> str:
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{obj!r} has no 'name' attribute")
    return name


def _build(kind: str, pm) -> dict[str, Entry]:
    hook = getattr(pm.hook, KINDS[kind])
    entries: dict[str, Entry] = {}
    for impl in hook.get_hookimpls():
        plugin = impl.plugin_name

        def register(obj, *args, _plugin=plugin, **kwargs):
            if kind == "value_set":
                obj = ValueSetSource.from_registration(obj, *args, **kwargs)
            elif kind == "environment":
                obj = EnvironmentSource.from_registration(obj, *args, **kwargs)
            elif not _has_metadata(kind, obj):
                print(f"warning: plugin {_plugin!r}: {kind} class {getattr(obj, '__qualname__', obj)!r} declares no "
                      f"`metadata = {METADATA[kind]}(...)`; it is not registered (see README "
                      f"{HOW_TO[kind]!r})", file=sys.stderr)
                return
            name = _name_of(obj)
            if name in entries:
                other = entries[name].plugin
                raise PluginConflictError(
                    f"{kind} {name!r} is registered by two plugins: {other!r} and {_plugin!r}; "
                    f"uninstall one of them or allow-list one with VGBENCH_PLUGINS"
                )
            desc = getattr(obj, "description", "") or ""
            entries[name] = Entry(name, obj, _plugin, " ".join(str(desc).split()))

        try:
            impl.function(register=register)
        except PluginConflictError:
            raise
        except Exception as exc:
            print(
                f"warning: plugin {plugin!r} failed in {KINDS[kind]}: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
    return dict(sorted(entries.items()))


def entries(kind: str) -> dict[str, Entry]:
    """All registered objects of one kind (``value_set``, ``task``, ``representation``, ``model``, ``environment``)."""
    global _built_from
    pm = get_plugin_manager()
    if _built_from is not pm:  # plugins.reset() made a new manager: forget what the old one registered
        _registries.clear()
        _built_from = pm
    if kind not in _registries:
        _registries[kind] = _build(kind, pm)
    return _registries[kind]


def get(kind: str, name: str) -> Entry:
    """One registered object; unknown names raise with "did you mean" suggestions."""
    known = entries(kind)
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    listing = {"value_set": "value-sets", "task": "tasks", "representation": "reps", "model": "models",
               "environment": "environments"}[kind]
    raise UnknownNameError(f"unknown {kind.replace('_', ' ')} {name!r}; {hint}see `vgbench list {listing}`")


def reset() -> None:
    """Drop the cached registries."""
    _registries.clear()
