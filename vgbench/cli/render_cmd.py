"""``vgbench data render``: one conflict scenario as an environment renders it (to check an environment file)."""

from __future__ import annotations

import difflib

import click

from ..errors import DataError
from .common import data_option, value_set_option
from .display import print_json


@click.command("render")
@click.argument("environment")
@value_set_option()
@click.option("--scenario", "scenario_id", help="A scenario id (default: the value set's first eval scenario).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: messages, follow, ignore.")
@data_option
def render_command(environment: str, value_set: str, scenario_id: str | None, as_json: bool) -> None:
    """Show how ENVIRONMENT (a name from `vgbench list environments`, or a .yaml file) renders one scenario:
    the messages up to the assistant's turn, then the upholding (follow) and giving-up (ignore) replies."""
    from ..data.records import load_records
    from ..environment_render import render_scenario
    from ..environments import resolve_environment
    from ..value_sets import resolve_value_set

    env = resolve_environment(environment)
    vs = resolve_value_set(value_set)
    scenarios = load_records("scenarios", vs.name, split=None if scenario_id else "eval")
    scenarios = [s for s in scenarios if s.get("action_follow") and s.get("action_ignore")]
    if scenario_id is not None:
        by_id = {s.get("id"): s for s in scenarios}
        if scenario_id not in by_id:
            close = difflib.get_close_matches(scenario_id, [str(i) for i in by_id], n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
            raise DataError(f"--scenario {scenario_id!r}: no scenario with both replies has this id in value set "
                            f"{vs.name!r}; {hint}ids look like {next(iter(by_id), '?')!r}")
        scenarios = [by_id[scenario_id]]
    if not scenarios:
        raise DataError(f"value set {vs.name!r} has no eval scenario with both replies to render; pass --scenario ID")
    messages, follow, ignore = render_scenario(env, scenarios[0])
    if as_json:
        print_json({"environment": env.name, "scenario": scenarios[0].get("id"), "messages": messages,
                    "follow": follow, "ignore": ignore})
        return
    print(f"environment {env.name}, scenario {scenarios[0].get('id')}")
    for message in messages:
        print(f"\n[{message['role']}]\n{message['content']}")
    print(f"\n[assistant: follow]\n{follow}\n\n[assistant: ignore]\n{ignore}")
