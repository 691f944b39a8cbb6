"""A small OpenAI-compatible chat-completions server on loopback, answering with a transformers model."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .backend import TransformersBackend

MAX_TOKENS_LIMIT = 4096


class BadRequest(ValueError):
    """A request the server answers with HTTP 400."""


def _messages(body: dict) -> list[dict]:
    """The chat of a request, with list-of-parts contents joined into text."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list of {role, content}")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise BadRequest(f"messages[{i}]: needs a role of system, user or assistant")
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        if not isinstance(content, str):
            raise BadRequest(f"messages[{i}].content: must be a string or a list of text parts")
        out.append({"role": m["role"], "content": content})
    return out


def _number(body: dict, key: str, default, kind, low, high):
    value = body.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise BadRequest(f"'{key}' must be a number from {low} to {high}")
    return kind(value)


def complete(backend: TransformersBackend, body: dict) -> dict:
    """One chat completion (``choices[0]``, ``usage``) for a parsed request body."""
    import torch

    messages = _messages(body)
    if body.get("max_completion_tokens") is not None:  # the newer name of max_tokens
        body = {**body, "max_tokens": body["max_completion_tokens"]}
    max_tokens = _number(body, "max_tokens", 256, int, 1, MAX_TOKENS_LIMIT)
    temperature = _number(body, "temperature", 1.0, float, 0.0, 2.0)
    top_p = _number(body, "top_p", 1.0, float, 0.0, 1.0)
    seed = _number(body, "seed", 0, int, 0, 2**63 - 1)
    top_logprobs = _number(body, "top_logprobs", 0, int, 0, 20) if body.get("logprobs") else None
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else [s for s in stop if isinstance(s, str) and s]

    tok, model = backend.tok, backend.model
    prompt = tok(backend.prompt_text(messages), return_tensors="pt", add_special_tokens=False).to(backend.device)
    n_prompt = prompt["input_ids"].shape[1]
    torch.manual_seed(seed)
    sampling = dict(do_sample=True, temperature=temperature, top_p=top_p) if temperature > 0 else dict(do_sample=False)
    with torch.inference_mode():
        out = model.generate(**prompt, max_new_tokens=max_tokens, pad_token_id=tok.pad_token_id,
                             return_dict_in_generate=True, output_logits=top_logprobs is not None, **sampling)
    new = out.sequences[0, n_prompt:].tolist()
    eos = {tok.eos_token_id, *([model.generation_config.eos_token_id] if isinstance(
        model.generation_config.eos_token_id, int) else model.generation_config.eos_token_id or [])}
    finish = "length"
    for k, token in enumerate(new):
        if token in eos:
            new, finish = new[:k], "stop"
            break
    text = tok.decode(new, skip_special_tokens=True)
    for s in stop:
        if s in text:
            text, finish = text[: text.index(s)], "stop"
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish, "logprobs": None}
    if top_logprobs is not None:
        choice["logprobs"] = {"content": _token_logprobs(tok, new, out.logits, top_logprobs)}
    return {"choice": choice, "usage": {"prompt_tokens": n_prompt, "completion_tokens": len(new),
                                        "total_tokens": n_prompt + len(new)}}


def _token_logprobs(tok, tokens: list[int], logits, k: int) -> list[dict]:
    """Per generated token: its log-probability and the ``k`` most likely tokens at that position."""
    import torch

    out = []
    for token, step in zip(tokens, logits):
        logp = torch.log_softmax(step[0].float(), dim=-1)
        top = torch.topk(logp, k) if k else None
        out.append({"token": tok.decode([token]), "logprob": float(logp[token]),
                    "top_logprobs": [] if top is None else [
                        {"token": tok.decode([int(i)]), "logprob": float(v)} for v, i in zip(top.values, top.indices)]})
    return out


class ChatCompletionServer(ThreadingHTTPServer):
    """``POST /v1/chat/completions`` and ``GET /v1/models``; one request at a time reaches the model."""

    daemon_threads = True

    def __init__(self, backend: TransformersBackend, model_name: str, port: int = 0, verbose: bool = False):
        super().__init__(("127.0.0.1", port), _Handler)
        self.backend, self.model_name, self.verbose = backend, model_name, verbose
        self.model_lock, self.count_lock = threading.Lock(), threading.Lock()
        self.completion_requests = 0  # chat-completion requests received (tests count them)

    @property
    def base_url(self) -> str:
        """What to put in OPENAI_BASE_URL."""
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: ChatCompletionServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            super().log_message(fmt, *args)

    def _send(self, status: int, data: dict) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        self._send(status, {"error": {"message": message, "type": kind, "code": status}})

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send(200, {"object": "list", "data": [{"id": self.server.model_name, "object": "model",
                                                          "owned_by": "vgbench"}]})
        elif self.path.rstrip("/") in ("/health", "/v1/health"):
            self._send(200, {"status": "ok"})
        else:
            self._error(404, f"no route {self.path}; use POST /v1/chat/completions or GET /v1/models", "not_found")

    def do_POST(self):  # noqa: N802
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route {self.path}; use POST /v1/chat/completions", "not_found")
            return
        with self.server.count_lock:
            self.server.completion_requests += 1
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError as exc:
            self._error(400, f"the body is not valid JSON ({exc})")
            return
        try:
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object")
            if body.get("stream"):
                raise BadRequest("streaming is not supported; send stream=false")
            if body.get("model") not in (None, self.server.model_name):
                self._error(404, f"model {body.get('model')!r} is not served here; this server serves "
                                 f"{self.server.model_name!r}", "not_found")
                return
            with self.server.model_lock:
                result = complete(self.server.backend, body)
        except BadRequest as exc:
            self._error(400, str(exc))
            return
        except Exception as exc:  # the model failed: say so instead of dropping the connection
            self._error(500, f"{type(exc).__name__}: {exc}", "server_error")
            return
        self._send(200, {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
                         "created": int(time.time()), "model": self.server.model_name,
                         "choices": [result["choice"]], "usage": result["usage"]})


def make_server(backend: TransformersBackend, model_name: str, port: int = 0, verbose: bool = False) -> ChatCompletionServer:
    """A server bound to 127.0.0.1:``port`` (0: a free port); call ``serve_forever()`` to run it."""
    return ChatCompletionServer(backend, model_name, port, verbose)
