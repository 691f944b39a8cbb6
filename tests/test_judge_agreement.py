"""judge_agreement: single-value judges (local model or an OpenAI-compatible endpoint) on a tiny pool."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from conftest import assert_one_line_error
from vgbench.api import RunContext
from vgbench.errors import VgbenchError
from vgbench.scoring import SPLIT_HALF
from vgbench.value_sets import resolve_value_set

VALUES = ["no_white_lies", "no_exploit_psych", "no_stereotypes"]  # one per family


def build(values=VALUES, per_value=2, progress=None, **options):
    """Build the task on constraints9 for a few values and scenarios."""
    from vgbench_tasks.judge_agreement import JudgeAgreement

    opts = {"values": ",".join(values), "pool_per_value": per_value, **options}
    return JudgeAgreement(**opts).build(resolve_value_set("constraints9"), RunContext(progress=progress))


class ChatServer:
    """A real chat-completions server on 127.0.0.1 whose log-probs come from the embedded model.

    ``hide_letters_for``: requests whose system prompt contains this text get top log-probs with
    every A/B token removed (a judge that never answers with a letter). Model ``broken`` gets a
    reply without choices.
    """

    def __init__(self, backend, api_key="test-key"):
        self.backend, self.api_key, self.hide_letters_for = backend, api_key, None
        self.requests, self.lock = 0, threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, body: dict) -> dict:
        import torch

        if body["model"] == "broken":
            return {"object": "chat.completion", "choices": []}
        found = []
        with self.lock:
            self.backend.next_token_logprobs([self.backend.prompt_text(body["messages"])],
                                             lambda idx, logp: found.append(logp[0]))
        values, ids = torch.topk(found[0], 40)
        top = [{"token": self.backend.tok.decode([int(i)]), "logprob": float(v)} for v, i in zip(values, ids)]
        if self.hide_letters_for and self.hide_letters_for in body["messages"][0]["content"]:
            top = [t for t in top if t["token"].strip() not in ("A", "B")]
        top = top[: body["top_logprobs"]]
        return {"object": "chat.completion", "choices": [{
            "index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": top[0]["token"]},
            "logprobs": {"content": [{**top[0], "top_logprobs": top}]}}]}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                server.requests += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                ok = self.path == "/v1/chat/completions" and self.headers.get("Authorization") == f"Bearer {server.api_key}"
                data = json.dumps(server.answer(body) if ok else {"error": "bad path or key"}).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def chat_server(embedded, monkeypatch):
    """The server, with OPENAI_BASE_URL / OPENAI_API_KEY pointing at it."""
    from vgbench.models.backend import get_backend

    server = ChatServer(get_backend(embedded.path))
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_build_gives_symmetric_matrix_with_split_half_replicates_and_resumes(embedded, isolated_home):
    calls = []

    def progress(total, label):
        calls.append([total, 0])
        return lambda n: calls[-1].__setitem__(1, calls[-1][1] + n)

    gt = build(progress=progress)
    n = len(VALUES)
    assert gt.value_ids == tuple(VALUES) and gt.matrix.shape == (n, n)
    off = gt.matrix[~np.eye(n, dtype=bool)]
    assert np.all(np.isfinite(off)) and np.all(np.abs(off) <= 1)
    np.testing.assert_allclose(gt.matrix, gt.matrix.T)
    assert np.all(np.diag(gt.matrix) == 1.0)
    assert gt.replicate_kind == SPLIT_HALF and len(gt.replicates) == 2 * 4
    assert all(r.shape == (n, n) for r in gt.replicates)
    assert gt.extra["unusable_judges"] == {} and len(gt.extra["pool"]) == n * 2
    prefs = np.array([gt.extra["preferences"][v] for v in VALUES])
    assert prefs.shape == (n, n * 2) and np.all((prefs > 0) & (prefs < 1))
    assert calls == [[n * 2 * n * 2, n * 2 * n * 2]]  # every judge, every pair, both orders

    steps = sorted((isolated_home / "cache" / "tasks" / "judge_agreement").glob("*.json"))
    assert len(steps) == n  # one step per judge
    mtimes = [p.stat().st_mtime_ns for p in steps]
    again = build()
    assert [p.stat().st_mtime_ns for p in steps] == mtimes  # nothing recomputed
    np.testing.assert_array_equal(again.matrix, gt.matrix)


@pytest.mark.slow
def test_averaged_preference_does_not_depend_on_which_order_is_judged_first(embedded):
    from vgbench.data.records import load_records
    from vgbench.models.backend import get_backend
    from vgbench_tasks.judging import LocalJudge, follow_preference, judge_chat, judge_system_prompt

    pool = load_records("scenarios", "constraints9", value_ids=["no_white_lies"], split="eval")[:2]
    system = judge_system_prompt(resolve_value_set("constraints9").value("no_white_lies"))
    follow_a = [judge_chat(system, s, True) for s in pool]
    follow_b = [judge_chat(system, s, False) for s in pool]
    batched = LocalJudge(get_backend(embedded.path, None, 8), "batched").ab_logprobs(follow_a + follow_b)
    one_by_one = LocalJudge(get_backend(embedded.path, None, 1), "single").ab_logprobs(follow_b + follow_a)
    k = len(pool)
    assert not np.allclose(batched[:k], batched[k:], atol=1e-3)  # swapping the replies moves P(A)

    pref = follow_preference(batched[:k], batched[k:])
    pref_other_order_first = follow_preference(one_by_one[k:], one_by_one[:k])
    np.testing.assert_allclose(pref, pref_other_order_first, atol=1e-4)
    p = np.exp(batched) / np.exp(batched).sum(axis=1, keepdims=True)  # renormalised over A/B
    np.testing.assert_allclose(pref, (p[:k, 0] + p[k:, 1]) / 2)  # P(A | follow is A), P(B | follow is B)


@pytest.mark.slow
def test_endpoint_judge_gives_the_local_judges_preferences(chat_server):
    values = VALUES[:2]
    remote = build(values, judge="openai:smollm2-135m")
    local = build(values)
    assert chat_server.requests == len(values) * 2 * len(values) * 2
    assert remote.extra["judge"].startswith("openai:smollm2-135m@http://127.0.0.1:")
    for v in values:
        np.testing.assert_allclose(remote.extra["preferences"][v], local.extra["preferences"][v], atol=1e-3)
    assert np.isfinite(remote.matrix[0, 1])


@pytest.mark.slow
def test_judge_without_a_usable_stance_gets_a_nan_row_and_column(chat_server):
    mute = resolve_value_set("constraints9").value(VALUES[1])
    chat_server.hide_letters_for = mute.name
    gt = build(per_value=1, judge="openai:smollm2-135m")
    assert "no A/B answer" in gt.extra["unusable_judges"][mute.id]
    assert set(gt.extra["unusable_judges"]) == {mute.id}
    assert np.all(np.isnan(gt.matrix[1])) and np.all(np.isnan(gt.matrix[:, 1]))
    assert np.isfinite(gt.matrix[0, 2]) and np.isfinite(gt.matrix[2, 0])


def test_unreachable_endpoint_is_one_cli_error_line_naming_the_address(cli):
    port = closed_port()
    proc = cli("build-task", "judge_agreement", "-o", "judge=openai:any", "-o", f"values={','.join(VALUES)}",
               "-o", "pool_per_value=1", env={"OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1"})
    assert_one_line_error(proc, f"http://127.0.0.1:{port}/v1/chat/completions", "unreachable")


def test_malformed_endpoint_reply_is_retried_then_one_line_error(chat_server):
    from vgbench_tasks.judging import EndpointJudge

    judge = EndpointJudge("broken", chat_server.url, chat_server.api_key, retries=3, backoff_s=0.01)
    with pytest.raises(VgbenchError) as err:
        judge.ab_logprobs([[{"role": "user", "content": "A or B?"}]])
    message = str(err.value)
    assert "\n" not in message and chat_server.url in message and "malformed" in message
    assert chat_server.requests == 3
