"""The plugin manager: entry points of group ``vgbench``, loaded one by one with per-plugin errors."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points

import pluggy

import vgbench.hookspecs as hookspecs  # the module only: `from . import` would read as depending on all of vgbench

ENTRY_POINT_GROUP = "vgbench"
#: Comma-separated entry-point names; when set, only those plugins load.
ALLOW_ENV = "VGBENCH_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    """One entry point and whether it loaded."""

    name: str
    module: str
    distribution: str
    version: str
    error: str | None = None


_pm: pluggy.PluginManager | None = None
_infos: list[PluginInfo] = []


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def get_plugin_manager() -> pluggy.PluginManager:
    """Build the plugin manager once: every allowed entry point, each load guarded."""
    global _pm
    if _pm is not None:
        return _pm
    pm = pluggy.PluginManager("vgbench")
    pm.add_hookspecs(hookspecs)
    allowed = os.environ.get(ALLOW_ENV)
    allow = {n.strip() for n in allowed.split(",") if n.strip()} if allowed else None
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allow is not None and ep.name not in allow:
            continue
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        try:
            module = import_module(ep.value.split(":")[0])
            pm.register(module, name=ep.name)
        except Exception as exc:  # a broken plugin must not take the CLI down with it
            _warn(f"plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}")
            _infos.append(PluginInfo(ep.name, ep.value, dist, version, error=f"{type(exc).__name__}: {exc}"))
            continue
        _infos.append(PluginInfo(ep.name, ep.value, dist, version))
    pm.check_pending()
    _pm = pm
    return pm


def plugin_infos() -> list[PluginInfo]:
    """Every entry point seen, loaded or failed."""
    get_plugin_manager()
    return list(_infos)


def register_commands(cli) -> None:
    """Let every loaded plugin add commands to the ``vgbench`` group; a plugin whose hook fails only warns."""
    pm = get_plugin_manager()
    for impl in pm.hook.register_commands.get_hookimpls():
        try:
            impl.function(*[{"cli": cli}[name] for name in impl.argnames])
        except Exception as exc:  # a broken plugin must not take the CLI down with it
            _warn(f"plugin {impl.plugin_name!r} failed to register commands: {type(exc).__name__}: {exc}")


def reset() -> None:
    """Forget the plugin manager (tests register one-off plugins and reset); the registry rebuilds from the next one."""
    global _pm
    _pm = None
    _infos.clear()
