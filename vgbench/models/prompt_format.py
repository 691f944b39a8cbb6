"""How a chat becomes prompt text: the model's own chat template, or vgbench's plain format for models without one.

The plain format (``plain``, for base models such as Gemma 3 270M) is::

    <bos>{system text}\n\n            (only when the chat has a system message)
    User: {user text}\n\n
    Assistant:\n{reply text}\n\n      (earlier assistant turns)
    Assistant:\n                      (the open turn: the reply starts on the next line)

``<bos>`` is the tokenizer's BOS token, written only when the tokenizer adds one to plain text (as a chat template
would), so that ``tok(text, add_special_tokens=False)`` gives the same ids either way. A base model does not stop
at the end of its turn: a generated reply is cut where it starts a line ``User:`` or ``Assistant:``.
"""

from __future__ import annotations

import json
from pathlib import Path

#: The model's own chat template (what every record without a ``prompt_format`` field used).
CHAT_TEMPLATE = "chat_template"
#: vgbench's plain "User:/Assistant:" format, for models without a chat template.
PLAIN = "plain"
PROMPT_FORMATS = (CHAT_TEMPLATE, PLAIN)
_ROLE_PREFIX = {"user": "User: ", "assistant": "Assistant:\n"}
OPEN_TURN = "Assistant:\n"


def plain_prompt(messages: list[dict], bos: str = "") -> str:
    """A chat in the plain format, up to the start of the assistant's reply."""
    parts = [bos]
    for message in messages:
        role, content = message["role"], message["content"]
        if role == "system":
            parts.append(f"{content}\n\n")
        elif role in _ROLE_PREFIX:
            parts.append(f"{_ROLE_PREFIX[role]}{content}\n\n")
        else:
            raise ValueError(f"chat message role {role!r} is not one of system, user, assistant")
    parts.append(OPEN_TURN)
    return "".join(parts)


def plain_reply(text: str) -> str:
    """A generated plain-format reply up to where the model starts a next ``User:`` or ``Assistant:`` turn."""
    lines = text.split("\n")
    for n, line in enumerate(lines):
        if n and line.startswith(("User:", "Assistant:")):
            return "\n".join(lines[:n]).strip()
    return text.strip()


def reply_text(tok, text: str) -> str:
    """A decoded reply as vgbench returns it: stripped; in the plain format, cut before a next turn it started."""
    return plain_reply(text) if tokenizer_prompt_format(tok) == PLAIN else text.strip()


def tokenizer_prompt_format(tok) -> str:
    """``chat_template`` when the tokenizer carries one, else ``plain``."""
    return CHAT_TEMPLATE if getattr(tok, "chat_template", None) else PLAIN


def render_chat(tok, messages: list[dict]) -> str:
    """The prompt text of a chat for this tokenizer: its chat template, or the plain format (BOS as the tokenizer adds)."""
    if tokenizer_prompt_format(tok) == CHAT_TEMPLATE:
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return plain_prompt(messages, _added_bos(tok))


def _added_bos(tok) -> str:
    """The BOS token text when the tokenizer puts it in front of plain text, else ""."""
    bos, bos_id = getattr(tok, "bos_token", None), getattr(tok, "bos_token_id", None)
    if not bos or bos_id is None:
        return ""
    return bos if tok("")["input_ids"][:1] == [bos_id] else ""


def directory_prompt_format(path: str | Path) -> str:
    """The prompt format of a model directory, read from its files (no transformers import)."""
    path = Path(path)
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return CHAT_TEMPLATE
    config = path / "tokenizer_config.json"
    if config.is_file():
        try:
            if json.loads(config.read_text(encoding="utf-8")).get("chat_template"):
                return CHAT_TEMPLATE
        except ValueError:
            pass
    return PLAIN
