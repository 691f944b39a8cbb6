"""Environments by name or path: registered ones (``register_environments``), the user's YAML files, or a file."""

from __future__ import annotations

import difflib
from dataclasses import replace
from pathlib import Path

from . import registry
from .data.search_path import chosen_data_dirs
from .environment_files import EnvironmentSource, environment_from_data, load_environment_file
from .environment_render import Environment
from .errors import DataError, UnknownNameError
from .store import vgbench_home

__all__ = ["Environment", "EnvironmentSource", "environment_names", "environment_sources", "load_environment_file",
           "resolve_environment", "user_environment_dirs"]

SUFFIXES = (".yaml", ".yml")


def user_environment_dirs() -> list[Path]:
    """Where the user's environment files are picked up: ``environments/`` of the ``--data`` and ``VGBENCH_DATA``
    folders, then ``$VGBENCH_HOME/environments``."""
    return [*(d / "environments" for d in chosen_data_dirs()), vgbench_home() / "environments"]


def _user_sources() -> dict[str, EnvironmentSource]:
    """Every ``*.yaml`` in the user's environment folders, by the name inside it (the first folder wins)."""
    found: dict[str, EnvironmentSource] = {}
    for folder in user_environment_dirs():
        for path in sorted(p for p in folder.glob("*") if p.suffix in SUFFIXES) if folder.is_dir() else ():
            env = load_environment_file(path)
            if env.name not in found:
                found[env.name] = EnvironmentSource(env.name, lambda env=env: env, env.description, str(path))
    return found


def environment_sources() -> dict[str, tuple[EnvironmentSource, str]]:
    """Every environment by name with where it comes from (the plugin's name, or ``user file``), sorted by name.

    A user file that takes a registered environment's name is an error naming both."""
    sources = {name: (entry.obj, entry.plugin) for name, entry in registry.entries("environment").items()}
    for name, source in _user_sources().items():
        if name in sources:
            raise DataError(f"{source.path}: name: {name!r} is already the environment registered by plugin "
                            f"{sources[name][1]!r}; give your file another `name:`")
        sources[name] = (source, "user file")
    return dict(sorted(sources.items()))


def environment_names() -> list[str]:
    """The names of every registered and user environment, sorted."""
    return list(environment_sources())


def resolve_environment(name_or_path: str) -> Environment:
    """An environment file by path, else a registered or user environment by name (unknown: did you mean)."""
    if name_or_path.endswith(SUFFIXES) or "/" in name_or_path:
        return load_environment_file(name_or_path)
    sources = environment_sources()
    if name_or_path not in sources:
        close = difflib.get_close_matches(name_or_path, list(sources), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise UnknownNameError(f"unknown environment {name_or_path!r}; {hint}see `vgbench list environments` "
                               f"(or pass an environment .yaml file)")
    source, plugin = sources[name_or_path]
    env = source.loader()
    if not isinstance(env, Environment):
        raise DataError(f"plugin {plugin!r}: environment {name_or_path!r}: its loader returned "
                        f"{type(env).__name__}, not an Environment; return vgbench.toolkit.Environment(...)")
    if source.path is None:  # built in code, not read from a file: check it as a file would be
        env = replace(environment_from_data(Path(f"plugin {plugin} environment {name_or_path}"), env.to_json()), path=None)
    if env.name != name_or_path:
        raise DataError(f"{source.path or plugin}: name: {env.name!r} differs from the name {name_or_path!r} it is "
                        f"registered under; make them the same")
    return env
