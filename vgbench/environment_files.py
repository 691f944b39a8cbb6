"""Reading and checking one environment file (YAML); every error names the file and the field."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .environment_render import (OPTION_PLACEHOLDERS, SCENARIO_PLACEHOLDERS, TOOLS_PLACEHOLDER, Environment,
                                 option_kept, placeholders, render_reply)
from .errors import DataError
from .registration_source import source_from_registration
from .text_files import read_text_file
from .yaml_files import load_yaml_unique_keys

FIELDS = ("name", "description", "system", "tools", "prior_turns", "user_template", "action_template")
ROLES = ("user", "assistant")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
#: An option text that needs escaping in JSON: a template must carry it whole (verbatim or as a tool call's argument).
PROBE_OPTION = 'A probe reply: it has "quotes", a back\\slash,\na line break and non-ASCII text (café).'
PLAIN_PROBE = "probe reply"


class EnvironmentFileError(DataError):
    """A problem in one environment file: ``path``, ``field`` and what to do."""

    def __init__(self, path: Path | str, field: str, message: str):
        super().__init__(f"{path}: {field}: {message}")
        self.path, self.field, self.message = str(path), field, message


def _text(path: Path, data: dict, key: str, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise EnvironmentFileError(path, key, "missing; add a non-empty string")
        return None
    if not isinstance(value, str):
        raise EnvironmentFileError(path, key, f"must be a string, got {type(value).__name__}; write it as text "
                                              f"(in YAML, put it in quotes or use a `|` block)")
    if not value.strip():
        raise EnvironmentFileError(path, key, "empty; add a non-empty string or leave the field out")
    return value


def _check_placeholders(path: Path, where: str, text: str, allowed: tuple[str, ...]) -> None:
    for name in placeholders(text):
        if name not in allowed:
            raise EnvironmentFileError(path, where, f"unknown placeholder {{{name}}}; this field may use "
                                                    f"{', '.join('{' + a + '}' for a in allowed)}")


def _tools(path: Path, raw: Any) -> tuple[dict, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise EnvironmentFileError(path, "tools", "expected a non-empty list of tools, each {name, description, parameters}")
    seen = set()
    for i, tool in enumerate(raw):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise EnvironmentFileError(path, where, "expected a mapping with name, description and parameters")
        for key in ("name", "description"):
            if not isinstance(tool.get(key), str) or not tool[key].strip():
                raise EnvironmentFileError(path, f"{where}.{key}", "missing; add a non-empty string")
        if tool["name"] in seen:
            raise EnvironmentFileError(path, f"{where}.name", f"duplicate tool name {tool['name']!r}; names must be unique")
        seen.add(tool["name"])
        if "parameters" in tool and not isinstance(tool["parameters"], dict):
            raise EnvironmentFileError(path, f"{where}.parameters", "expected a mapping (a JSON schema of the arguments)")
        try:
            json.dumps(tool)
        except (TypeError, ValueError):
            raise EnvironmentFileError(path, where, "must be JSON-like data (mappings, lists, text, numbers)") from None
    return tuple(raw)


def _prior_turns(path: Path, raw: Any) -> tuple[dict[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise EnvironmentFileError(path, "prior_turns", "expected a list of {role, content} turns")
    turns = []
    for i, turn in enumerate(raw):
        where = f"prior_turns[{i}]"
        if not isinstance(turn, dict) or set(turn) != {"role", "content"}:
            raise EnvironmentFileError(path, where, "expected a mapping with exactly the keys role and content")
        if turn["role"] not in ROLES:
            raise EnvironmentFileError(path, f"{where}.role", f"{turn['role']!r} is not one of {', '.join(ROLES)} "
                                                              f"(a system prompt goes in `system`)")
        content = _text(path, turn, "content", required=True)
        _check_placeholders(path, f"{where}.content", content, SCENARIO_PLACEHOLDERS)
        turns.append({"role": turn["role"], "content": content})
    return tuple(turns)


def _tool_call_name(reply: str) -> str | None:
    """The called tool's name when a rendered reply is a JSON tool call ``{"name": ..., "arguments": {...}}``."""
    try:
        call = json.loads(reply)
    except ValueError:
        return None
    return call["name"] if isinstance(call, dict) and isinstance(call.get("name"), str) else None


def _check_action(path: Path, env: Environment) -> None:
    """The template keeps the option's text; a tool call is valid JSON for any text and names a declared tool."""
    _check_placeholders(path, "action_template", env.action_template, OPTION_PLACEHOLDERS)
    if not option_kept(render_reply(env, PROBE_OPTION), PROBE_OPTION):
        raise EnvironmentFileError(path, "action_template", "drops the option text (a probe option does not appear in "
                                                            "the rendered reply, verbatim or as a tool call's argument); "
                                                            "place {option}, or {option_json} inside a JSON tool call")
    plain_call = _tool_call_name(render_reply(env, PLAIN_PROBE))
    call = _tool_call_name(render_reply(env, PROBE_OPTION))
    if plain_call is not None and call is None:
        raise EnvironmentFileError(path, "action_template", "renders invalid JSON for an option with quotes or line "
                                                            "breaks; write {option_json} (a quoted, escaped JSON string) "
                                                            "instead of \"{option}\"")
    declared = [t["name"] for t in env.tools]
    if call is not None and not env.tools:
        raise EnvironmentFileError(path, "tools", f"missing; action_template renders a tool call ({call!r}), so "
                                                  f"declare the tool schema: a list of {{name, description, parameters}}")
    if call is not None and call not in declared:
        raise EnvironmentFileError(path, "action_template", f"calls tool {call!r}, which `tools` does not declare "
                                                            f"(declared: {', '.join(declared)})")
    if env.tools and call is None:
        raise EnvironmentFileError(path, "action_template", "the environment declares tools, so each reply must be a "
                                                            'JSON tool call, e.g. {"name": "TOOL", "arguments": '
                                                            '{"text": {option_json}}}')


def environment_from_data(path: Path, data: Any) -> Environment:
    """Check an environment's parsed fields; errors name ``path`` and the field."""
    if not isinstance(data, dict):
        raise EnvironmentFileError(path, "top level", "expected a mapping with name, description and action_template")
    for key in data:
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key), FIELDS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise EnvironmentFileError(path, str(key), f"unknown field; {hint}fields: {', '.join(FIELDS)}")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not _ID.match(name):
        raise EnvironmentFileError(path, "name", f"{name!r} must be lower_snake_case (letters, digits, _)")
    description = _text(path, data, "description", required=True)
    system = _text(path, data, "system")
    user_template = _text(path, data, "user_template") or "{user_message}"
    action_template = _text(path, data, "action_template", required=True)
    tools = _tools(path, data.get("tools"))
    prior_turns = _prior_turns(path, data.get("prior_turns"))
    _check_placeholders(path, "user_template", user_template, SCENARIO_PLACEHOLDERS)
    if system is not None:
        _check_placeholders(path, "system", system, SCENARIO_PLACEHOLDERS + ((TOOLS_PLACEHOLDER,) if tools else ()))
    if tools and (system is None or "{" + TOOLS_PLACEHOLDER + "}" not in system):
        raise EnvironmentFileError(path, "system", "the environment declares tools but its system prompt does not show "
                                                   "them; place {tools} (the schema as JSON) in `system`")
    texts = [user_template, system or "", *(t["content"] for t in prior_turns)]
    if not any(p in SCENARIO_PLACEHOLDERS for text in texts for p in placeholders(text)):
        raise EnvironmentFileError(path, "user_template", "the scenario's message appears nowhere; place {user_message} "
                                                          "in user_template (the default) or in a prior turn")
    env = Environment(name=name, description=" ".join(description.split()), action_template=action_template,
                      user_template=user_template, system=system, tools=tools, prior_turns=prior_turns, path=str(path))
    _check_action(path, env)
    return env


def load_environment_file(path: str | Path) -> Environment:
    """Read and check an environment file; one error naming the file and the field otherwise."""
    import yaml

    path = Path(path)
    text = read_text_file(path, "environment file")
    try:
        data = load_yaml_unique_keys(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None and "at line" not in problem else ""
        raise EnvironmentFileError(path, "parse", f"not valid YAML ({problem}{where})") from None
    return environment_from_data(path, data)


@dataclass(frozen=True)
class EnvironmentSource:
    """A registered environment: its name, how to load it (lazily) and where it comes from."""

    name: str
    loader: Callable[[], Environment]
    description: str = ""
    path: str | None = None

    @classmethod
    def from_registration(cls, name_or_obj, path_or_loader=None, description: str = "") -> "EnvironmentSource":
        """Accept ``register(name, path)``, ``register(name, loader)`` or ``register(Environment)``."""
        return source_from_registration(cls, Environment, load_environment_file, name_or_obj, path_or_loader,
                                        description)
