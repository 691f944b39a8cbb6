"""An environment as data, and how it renders one conflict scenario and its two options in that setting."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

#: ``{name}`` with a name of letters, digits and ``_``; any other brace (a JSON object in a template) is literal text.
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: Placeholders each field may use. ``*_json`` is the text as a JSON string literal (quoted, escaped).
SCENARIO_PLACEHOLDERS = ("user_message", "user_message_json")
OPTION_PLACEHOLDERS = ("option", "option_json")
TOOLS_PLACEHOLDER = "tools"


@dataclass(frozen=True)
class Environment:
    """A setting the forced choice is made in: an optional system prompt (with ``{tools}``), an optional tool
    schema, turns before the scenario, the final user turn and how an option's text becomes the reply."""

    name: str
    description: str
    action_template: str
    user_template: str = "{user_message}"
    system: str | None = None
    tools: tuple[dict[str, Any], ...] = ()
    prior_turns: tuple[dict[str, str], ...] = ()
    path: str | None = field(default=None, compare=False)

    def to_json(self) -> dict:
        """The environment as it is written in a file (empty optional fields left out; ``path`` too): use it in cache
        keys, e.g. ``fingerprint(environment.to_json())``."""
        data = {"name": self.name, "description": self.description, "system": self.system,
                "tools": [dict(t) for t in self.tools], "prior_turns": [dict(t) for t in self.prior_turns],
                "user_template": self.user_template, "action_template": self.action_template}
        return {key: value for key, value in data.items() if value not in (None, [])}


def fill(template: str, values: dict[str, str]) -> str:
    """``template`` with every ``{name}`` replaced by ``values[name]``, and ``{name_json}`` by its JSON string literal."""
    def one(match: re.Match) -> str:
        key = match.group(1)
        if key in values:
            return values[key]
        if key.endswith("_json") and key[:-5] in values:
            return json.dumps(values[key[:-5]], ensure_ascii=False)
        raise KeyError(key)

    return PLACEHOLDER.sub(one, template)


def placeholders(template: str) -> list[str]:
    """The placeholder names a template uses, in order."""
    return PLACEHOLDER.findall(template)


def render_messages(environment: Environment, user_message: str) -> list[dict[str, str]]:
    """The chat up to the assistant's turn: system prompt (tool schema filled in), prior turns, final user turn."""
    values = {"user_message": user_message}
    head = []
    if environment.system:
        tools = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in environment.tools)  # one tool a line
        head.append({"role": "system", "content": fill(environment.system, {**values, TOOLS_PLACEHOLDER: tools})})
    turns = [{"role": t["role"], "content": fill(t["content"], values)} for t in environment.prior_turns]
    return head + turns + [{"role": "user", "content": fill(environment.user_template, values)}]


def render_reply(environment: Environment, option: str) -> str:
    """One option's text as the assistant's reply in this environment (e.g. a JSON tool call carrying it)."""
    return fill(environment.action_template, {"option": option})


def render_scenario(environment: Environment, scenario: dict) -> tuple[list[dict[str, str]], str, str]:
    """(messages up to the assistant's turn, upholding reply, giving-up reply) of one conflict scenario."""
    return (render_messages(environment, scenario["user_message"]),
            render_reply(environment, scenario["action_follow"]), render_reply(environment, scenario["action_ignore"]))


def rendered_length(tokenizer, environment: Environment, scenario: dict) -> int:
    """Tokens of a scenario's rendered prompt plus its longer rendered reply (compare with the model's context length)."""
    from .models.prompt_format import render_chat

    messages, follow, ignore = render_scenario(environment, scenario)
    prompt = len(tokenizer(render_chat(tokenizer, messages), add_special_tokens=False)["input_ids"])
    return prompt + max(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in (follow, ignore))


def option_kept(reply: str, option: str) -> bool:
    """Whether a rendered reply carries the option's text: verbatim, or as a string in the JSON tool call it is."""
    if option in reply:
        return True
    try:
        call = json.loads(reply)
    except ValueError:
        return False
    return option in json_strings(call)


def json_strings(data: Any) -> list[str]:
    """Every string value in parsed JSON data (keys left out)."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for v in data.values() for s in json_strings(v)]
    if isinstance(data, list):
        return [s for v in data for s in json_strings(v)]
    return []


def scenario_prompts(environment: Environment, scenarios: Sequence[dict]) -> tuple[list, list[str], list[str]]:
    """Rendered prompts, upholding replies and giving-up replies of many scenarios."""
    rendered = [render_scenario(environment, s) for s in scenarios]
    return [r[0] for r in rendered], [r[1] for r in rendered], [r[2] for r in rendered]
