"""Generator models behind one interface: an OpenAI-compatible endpoint (``openai:MODEL``) or a local one (``hf:PATH``)."""

from __future__ import annotations

import http.client
import json
import math
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import VgbenchError
from .backend import Chat

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
SPEC_HELP = "use openai:MODEL (endpoint from OPENAI_BASE_URL) or hf:PATH_OR_ID (hf:embedded for the embedded model)"


@dataclass(frozen=True)
class YesNo:
    """A generator's answer to a yes/no question: the text, P(yes) where known, and the answer read from them."""

    text: str
    p_yes: float | None

    @property
    def answer(self) -> bool | None:
        """True/False, or None when neither the probabilities nor the text say yes or no."""
        from ..data.prompts import parse_yes_no

        return self.p_yes >= 0.5 if self.p_yes is not None else parse_yes_no(self.text)


class ChatClient:
    """A chat model that writes text and answers yes/no questions."""

    spec: str

    def complete(self, messages: Chat, max_tokens: int, temperature: float = 0.0, seed: int = 0) -> str:
        """The model's reply to a chat."""
        raise NotImplementedError

    def yes_no(self, messages: Chat) -> YesNo:
        """The model's answer to a chat that asks a yes/no question."""
        raise NotImplementedError


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def p_yes_from_top_logprobs(top: list[dict]) -> float | None:
    """P(yes) / (P(yes) + P(no)) from a first token's top log-probabilities (a missing side gets the smallest listed)."""
    groups: dict[str, list[float]] = {"yes": [], "no": []}
    for item in top:
        word = str(item.get("token", "")).strip().lower()
        if word in groups and isinstance(item.get("logprob"), (int, float)):
            groups[word].append(float(item["logprob"]))
    if not groups["yes"] and not groups["no"]:
        return None
    floor = min(float(i["logprob"]) for i in top if isinstance(i.get("logprob"), (int, float)))
    yes, no = (math.log(sum(math.exp(v) for v in g)) if g else floor for g in (groups["yes"], groups["no"]))
    return 1.0 / (1.0 + math.exp(no - yes))


class OpenAIChatClient(ChatClient):
    """An OpenAI-compatible chat-completions endpoint (hosted APIs, ``vllm serve``, ``vgbench serve``)."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, retries: int = 4,
                 retry_wait: float = 2.0, timeout: float = 600.0):
        self.model, self.spec = model, f"openai:{model}"
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.retries, self.retry_wait, self.timeout = retries, retry_wait, timeout
        self.logprobs = True  # switched off when the endpoint refuses them
        if self.base_url == DEFAULT_BASE_URL and not self.api_key:
            raise VgbenchError(f"generator {self.spec}: OPENAI_API_KEY is not set; set it, or set OPENAI_BASE_URL "
                               f"to your own OpenAI-compatible server (e.g. vgbench serve, vllm serve)")

    @property
    def url(self) -> str:
        """The chat-completions URL requests go to."""
        return f"{self.base_url}/chat/completions"

    def _request(self, payload: dict) -> bytes:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=json.dumps(payload).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return resp.read()

    def post(self, payload: dict) -> dict:
        """A parsed chat completion; retries connection failures, 429/5xx and malformed replies with exponential backoff."""
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.retry_wait * 2 ** (attempt - 1))
            try:
                body = self._request(payload)
            except urllib.error.HTTPError as exc:
                detail = _one_line(exc.read().decode("utf-8", "replace") or exc.reason)
                if exc.code in RETRY_STATUS:
                    last = f"HTTP {exc.code}: {detail}"
                    continue
                if exc.code == 400 and payload.get("logprobs"):
                    raise _LogprobsRefused() from None
                raise VgbenchError(f"generator {self.spec}: {self.url} answered HTTP {exc.code} ({detail}); check the "
                                   f"model name, OPENAI_API_KEY and OPENAI_BASE_URL") from None
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                last = f"cannot reach it ({_one_line(getattr(exc, 'reason', None) or exc)})"
                continue
            try:
                data = json.loads(body)
                message = data["choices"][0]["message"]
                if not isinstance(message.get("content") or "", str):
                    raise TypeError("content")
                return data
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                last = f"the reply is not a chat-completion JSON object (starts {_one_line(body[:60].decode('utf-8', 'replace'), 70)!r})"
        raise VgbenchError(f"generator {self.spec}: no usable reply from {self.url} after {self.retries + 1} attempts "
                           f"(last: {last}); check that the server is up and OPENAI_BASE_URL points at it")

    def complete(self, messages: Chat, max_tokens: int, temperature: float = 0.0, seed: int = 0) -> str:
        """The endpoint's reply text."""
        data = self.post({"model": self.model, "messages": messages, "max_tokens": max_tokens,
                          "temperature": temperature, "seed": seed})
        return data["choices"][0]["message"].get("content") or ""

    def yes_no(self, messages: Chat) -> YesNo:
        """The first token's log-probabilities of yes and no where the endpoint gives them, else the text answer."""
        payload = {"model": self.model, "messages": messages, "max_tokens": 3, "temperature": 0.0}
        if self.logprobs:
            try:
                data = self.post({**payload, "logprobs": True, "top_logprobs": 20})
            except _LogprobsRefused:
                self.logprobs = False
        if not self.logprobs:
            data = self.post(payload)
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        content = (choice.get("logprobs") or {}).get("content") or []
        p_yes = None
        if content and isinstance(content[0], dict):
            p_yes = p_yes_from_top_logprobs(content[0].get("top_logprobs") or [])
        return YesNo(text, p_yes)


class _LogprobsRefused(Exception):
    """The endpoint answered HTTP 400 to a request with logprobs."""


class HFChatClient(ChatClient):
    """A local transformers model (through :mod:`vgbench.models.backend`)."""

    def __init__(self, path_or_id: str, cache_dir: Path, device: str | None = None):
        from .backend import get_backend
        from .subject import resolve_subject_model

        self.spec = f"hf:{path_or_id}"
        self.model = resolve_subject_model(path_or_id, cache_dir)
        self.backend = get_backend(self.model.path, device, batch_size=8)

    def complete(self, messages: Chat, max_tokens: int, temperature: float = 0.0, seed: int = 0) -> str:
        """The model's reply (greedy at temperature 0, seeded sampling otherwise)."""
        return self.backend.generate([messages], max_new_tokens=max_tokens, temperature=temperature, seed=seed)[0]

    def yes_no(self, messages: Chat) -> YesNo:
        """P(yes) from the next-token log-probabilities of "Yes" and "No" after the question."""
        yes, no = self.backend.reply_logprobs([messages, messages], ["Yes", "No"])
        p_yes = 1.0 / (1.0 + math.exp(no.total - yes.total))
        return YesNo("Yes" if p_yes >= 0.5 else "No", p_yes)


def make_client(spec: str, cache_dir: Path, *, retries: int = 4, retry_wait: float = 2.0, timeout: float = 600.0,
                device: str | None = None) -> ChatClient:
    """The generator named by ``spec``: ``openai:MODEL`` or ``hf:PATH_OR_ID``."""
    kind, _, name = spec.partition(":")
    if not name.strip():
        raise VgbenchError(f"--generator {spec!r}: {SPEC_HELP}")
    if kind == "openai":
        return OpenAIChatClient(name, retries=retries, retry_wait=retry_wait, timeout=timeout)
    if kind == "hf":
        return HFChatClient(name, cache_dir, device)
    raise VgbenchError(f"--generator {spec!r}: unknown kind {kind!r}; {SPEC_HELP}")
