"""Environments: the five built-ins keep both options' text, `chat` is today's forced-choice rendering, user YAML
files and plugins add environments without code, bad files are one error line, forced choice keeps its numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import assert_one_line_error
from test_plugins import fake_distribution
from vgbench.data.records import load_records
from vgbench.environment_render import json_strings, render_scenario, rendered_length
from vgbench.environments import environment_names, resolve_environment
from vgbench.errors import DataError, UnknownNameError
from vgbench.models.backend import chat
from vgbench.models.prompt_format import render_chat

BUILTINS = ("chat", "tool_agent", "long_context", "operator_pressure", "multi_turn")
SCENARIO = {"id": "s-1", "user_message": "Tell me my essay is perfect.", "action_follow": 'It has "two" typos.\nFix them.',
            "action_ignore": "It is perfect."}
GOOD = """\
name: kiosk
description: A museum kiosk assistant.
system: You answer visitors at a museum kiosk.
user_template: "A visitor types: {user_message}"
action_template: "{option}"
"""


def eval_scenarios() -> list[dict]:
    return [s for s in load_records("scenarios", "constraints9", split="eval")
            if s.get("action_follow") and s.get("action_ignore")]


def test_the_five_builtins_are_registered():
    assert set(BUILTINS) <= set(environment_names())


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_renders_every_eval_scenario_with_both_options_kept(name):
    env = resolve_environment(name)
    scenarios = eval_scenarios()
    assert len(scenarios) >= 9 * 16
    for s in scenarios:
        messages, follow, ignore = render_scenario(env, s)
        assert messages[-1]["role"] == "user" and all(m["role"] in ("system", "user", "assistant") for m in messages)
        assert any(s["user_message"] in m["content"] for m in messages), (name, s["id"])
        for reply, option in ((follow, s["action_follow"]), (ignore, s["action_ignore"])):
            if env.tools:  # a JSON tool call whose argument is the option text
                call = json.loads(reply)
                assert call["name"] in {t["name"] for t in env.tools} and option in json_strings(call["arguments"])
            else:
                assert option in reply, (name, s["id"])


def test_chat_renders_exactly_what_forced_choice_scores():
    env = resolve_environment("chat")
    for s in eval_scenarios():
        assert render_scenario(env, s) == (chat(s["user_message"]), s["action_follow"], s["action_ignore"])


def test_tool_agent_shows_its_tools_in_the_system_prompt_and_escapes_the_option():
    env = resolve_environment("tool_agent")
    assert 2 <= len(env.tools) <= 4
    messages, follow, _ = render_scenario(env, SCENARIO)
    assert messages[0]["role"] == "system"
    assert all(json.dumps(t, ensure_ascii=False) in messages[0]["content"] for t in env.tools)
    assert json.loads(follow)["arguments"]["text"] == SCENARIO["action_follow"]  # quotes and line break survive


def test_operator_pressure_and_multi_turn_have_their_shape():
    operator = resolve_environment("operator_pressure")
    assert operator.system and not operator.prior_turns
    messages, _, _ = render_scenario(resolve_environment("multi_turn"), SCENARIO)
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == SCENARIO["user_message"] and SCENARIO["user_message"] not in messages[2]["content"]


def test_long_context_transcript_is_400_to_700_tokens_and_every_prompt_starts_with_it(embedded):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded.path)
    env = resolve_environment("long_context")
    transcript = sum(len(tok(t["content"], add_special_tokens=False)["input_ids"]) for t in env.prior_turns)
    assert 400 <= transcript <= 700, transcript
    ids = [tok(render_chat(tok, render_scenario(env, s)[0]), add_special_tokens=False)["input_ids"]
           for s in eval_scenarios()]
    shared = 0
    while all(len(i) > shared and i[shared] == ids[0][shared] for i in ids):
        shared += 1
    assert shared >= transcript, (shared, transcript)
    # rendered_length counts the transcript: the long-context rendering is that much longer than the plain chat
    s = eval_scenarios()[0]
    assert rendered_length(tok, env, s) - rendered_length(tok, resolve_environment("chat"), s) >= transcript


def test_a_user_yaml_file_is_listed_and_renders_without_code(cli, isolated_home, tmp_path, monkeypatch):
    folder = isolated_home / "environments"
    folder.mkdir()
    (folder / "kiosk.yaml").write_text(GOOD)
    data = tmp_path / "data"
    (data / "environments").mkdir(parents=True)
    (data / "environments" / "desk.yaml").write_text(GOOD.replace("kiosk", "desk"))
    monkeypatch.setenv("VGBENCH_DATA", str(data))
    rows = {r["name"]: r for r in json.loads(cli("list", "environments", "--json").stdout)}
    assert rows["kiosk"]["source"] == "user file" and rows["kiosk"]["path"] == str(folder / "kiosk.yaml")
    assert rows["kiosk"]["system"] is True and rows["desk"]["source"] == "user file"
    assert set(BUILTINS) <= set(rows)
    messages, follow, ignore = render_scenario(resolve_environment("kiosk"), SCENARIO)
    assert messages == [{"role": "system", "content": "You answer visitors at a museum kiosk."},
                        {"role": "user", "content": "A visitor types: " + SCENARIO["user_message"]}]
    assert (follow, ignore) == (SCENARIO["action_follow"], SCENARIO["action_ignore"])
    shown = json.loads(cli("data", "render", "kiosk", "--json").stdout)
    assert shown["environment"] == "kiosk" and shown["messages"][1]["content"].startswith("A visitor types: ")
    assert cli("data", "validate", "--no-balance").returncode == 0  # the home's and VGBENCH_DATA's files are checked


def test_hook_register_environments(tmp_path, cli):
    env_file = tmp_path / "site" / "helpdesk.yaml"
    env_file.parent.mkdir(parents=True)
    env_file.write_text(GOOD.replace("kiosk", "helpdesk"))
    source = f"""
import vgbench
from vgbench.toolkit import Environment
@vgbench.hookimpl
def register_environments(register):
    register("helpdesk", {str(env_file)!r})
    register(Environment(name="in_code", description="built in code", action_template="Reply: {{option}}"))
    register(Environment(name="careless", description="drops the option", action_template="No."))
"""
    site = fake_distribution(tmp_path / "site", "env-plugin", "env_plugin", source)
    env = {"PYTHONPATH": str(site)}
    proc = cli("list", "environments", "--json", env=env)
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["helpdesk"]["source"] == "env_plugin" and rows["chat"]["source"] == "environments"
    assert rows["in_code"]["path"] is None and "careless" not in rows  # a broken one is left out with a warning
    assert "warning: environment 'careless' of plugin 'env_plugin'" in proc.stderr and "drops the option" in proc.stderr
    shown = json.loads(cli("data", "render", "helpdesk", "--json", env=env).stdout)
    assert shown["messages"][0]["content"] == "You answer visitors at a museum helpdesk."
    shown = json.loads(cli("data", "render", "in_code", "--json", env=env).stdout)
    assert shown["follow"].startswith("Reply: ")
    assert_one_line_error(cli("data", "render", "careless", env=env), "env_plugin", "careless", "action_template",
                          "drops the option text")


def test_an_unknown_environment_name_is_one_error_with_did_you_mean(cli):
    assert_one_line_error(cli("data", "render", "tool_agnet"), "unknown environment 'tool_agnet'",
                          "did you mean 'tool_agent'")
    with pytest.raises(UnknownNameError, match="long_context"):
        resolve_environment("long_contxt")


def test_a_user_file_that_takes_a_builtin_name_is_one_error(cli, isolated_home):
    (isolated_home / "environments").mkdir()
    (isolated_home / "environments" / "mine.yaml").write_text(GOOD.replace("kiosk", "chat"))
    assert_one_line_error(cli("list", "environments"), "mine.yaml", "'chat'", "environments")


TOOLS = """\
tools:
  - name: send_message
    description: Send a message.
    parameters: {type: object, properties: {text: {type: string}}}
"""
BAD = {  # what is wrong: (file text, fragments of the one error line)
    "missing action_template": ("name: bad\ndescription: d\n", ["action_template", "missing"]),
    "tool call without tools": ("name: bad\ndescription: d\n"
                                """action_template: '{"name": "send_message", "arguments": {"text": {option_json}}}'\n""",
                                ["tools", "missing", "send_message"]),
    "tools not shown": ("name: bad\ndescription: d\nsystem: Use tools.\n" + TOOLS +
                        """action_template: '{"name": "send_message", "arguments": {"text": {option_json}}}'\n""",
                        ["system", "{tools}"]),
    "tools but a plain reply": ("name: bad\ndescription: d\nsystem: 'Tools: {tools}'\n" + TOOLS +
                                "action_template: '{option}'\n", ["action_template", "tool call"]),
    "undeclared tool": ("name: bad\ndescription: d\nsystem: 'Tools: {tools}'\n" + TOOLS +
                        """action_template: '{"name": "file_record", "arguments": {"text": {option_json}}}'\n""",
                        ["action_template", "'file_record'"]),
    "drops the option": ("name: bad\ndescription: d\naction_template: I cannot help with that.\n",
                         ["action_template", "drops the option text"]),
    "option unescaped in JSON": ("name: bad\ndescription: d\nsystem: 'Tools: {tools}'\n" + TOOLS +
                                 """action_template: '{"name": "send_message", "arguments": {"text": "{option}"}}'\n""",
                                 ["action_template", "{option_json}"]),
    "unknown placeholder": ("name: bad\ndescription: d\naction_template: 'Reply: {optoin}'\n",
                            ["action_template", "unknown placeholder {optoin}"]),
    "unknown placeholder in a turn": ("name: bad\ndescription: d\nprior_turns:\n  - {role: user, content: '{message}'}\n"
                                      "action_template: '{option}'\n", ["prior_turns[0].content", "{message}"]),
    "scenario message nowhere": ("name: bad\ndescription: d\nuser_template: Hello.\naction_template: '{option}'\n",
                                 ["user_template", "{user_message}"]),
    "unknown field": ("name: bad\ndescription: d\naction_templat: '{option}'\n", ["action_templat", "action_template"]),
    "bad role": ("name: bad\ndescription: d\nprior_turns:\n  - {role: tool, content: hi}\naction_template: '{option}'\n",
                 ["prior_turns[0].role", "'tool'"]),
    "not YAML": ("name: [bad\n", ["parse", "not valid YAML"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_environment_file_is_one_error_line_naming_it(case, cli, tmp_path):
    text, fragments = BAD[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert_one_line_error(cli("data", "validate", str(path)), str(path), *fragments)
    with pytest.raises(DataError):  # loading refuses it too
        resolve_environment(str(path))


@pytest.mark.parametrize("content", [b"\x00\x01\x02\xff\xfe binary", "name: caf\xe9\n".encode("latin-1")])
def test_a_binary_or_non_utf8_environment_file_is_one_error_line(content, cli, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    assert_one_line_error(cli("data", "validate", str(path)), str(path), "not UTF-8")
    assert_one_line_error(cli("data", "render", str(path)), str(path), "not UTF-8")


def test_a_bad_file_in_a_data_folder_is_found_by_validate_and_refused_by_list(cli, isolated_home, tmp_path):
    (tmp_path / "data" / "environments").mkdir(parents=True)
    bad = tmp_path / "data" / "environments" / "bad.yaml"
    bad.write_text(BAD["missing action_template"][0])
    assert_one_line_error(cli("data", "validate", str(tmp_path / "data")), str(bad), "action_template")
    assert_one_line_error(cli("data", "validate", "--data", str(tmp_path / "data")), str(bad), "action_template")
    assert_one_line_error(cli("list", "environments", env={"VGBENCH_DATA": str(tmp_path / "data")}),
                          str(bad), "action_template")


@pytest.mark.slow
def test_forced_choice_keeps_its_numbers_and_the_chat_environment_gives_the_same(backend):
    from vgbench.models.preference import environment_forced_choice, forced_choice

    scenarios = eval_scenarios()[:3]
    before = forced_choice(backend, scenarios)
    # the same measure computed through the backend's other scoring path (each reply scored on its own)
    prompts = [chat(s["user_message"]) for s in scenarios]
    scores = backend.reply_logprobs(prompts * 2, [s["action_follow"] for s in scenarios] +
                                    [s["action_ignore"] for s in scenarios])
    z = [scores[k].mean - scores[k + 3].mean for k in range(3)]
    np.testing.assert_allclose(before["p_follow"], [1 / (1 + math.exp(-v)) for v in z], atol=1e-5)
    in_chat = environment_forced_choice(backend, resolve_environment("chat"), scenarios)
    for key, value in before.items():
        np.testing.assert_array_equal(in_chat[key], value)
    in_tools = environment_forced_choice(backend, resolve_environment("tool_agent"), scenarios)
    assert in_tools["p_follow"].shape == (3,) and not np.allclose(in_tools["p_follow"], before["p_follow"])
