"""``vgbench data``: validate the scenario, persona and topic records and report their statistics."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import DataError
from .common import data_option, model_option
from .display import print_json, print_table, progress
from .render_cmd import render_command

PATH_HELP = ("A folder laid out like vgbench/resources (scenarios/, persona/, topics/, environments/), one .jsonl "
             "file or one environment .yaml file.")


def _existing(path: Path | None) -> Path | None:
    if path is not None and not path.exists():
        raise DataError(f"{path}: no such file or folder; pass a folder laid out like vgbench/resources "
                        f"(scenarios/, persona/, topics/) or a .jsonl file")
    return path


@click.group("data")
def data_group() -> None:
    """Check and describe the scenario, persona and topic data and the environment files."""


@data_group.command("validate")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--no-balance", is_flag=True,
              help="Skip the reply balance warnings (token lengths need the embedded model's tokenizer).")
@data_option
def validate_command(path: Path | None, no_balance: bool) -> None:
    """Check records and environment files (PATH, else the --data and VGBENCH_DATA folders, else the shipped data;
    without PATH also $VGBENCH_HOME/environments); exit 2 on problems. Reply pairs that fail the balance checks
    (see `vgbench data stats`) get one warning line per file."""
    from ..data.schema import ValidationReport, validate_environment_folder, validate_path
    from ..data.search_path import chosen_data_dirs
    from ..store import vgbench_home

    paths = [_existing(path)] if path is not None else chosen_data_dirs() or [None]
    reports = [validate_path(p) for p in paths]
    prefix = (lambda p: f"{p}: ") if len(paths) > 1 else (lambda p: "")
    checked = {f"{prefix(p)}{k}": v for p, r in zip(paths, reports) for k, v in r.checked.items()}
    home_environments = vgbench_home() / "environments"
    if path is None and home_environments.is_dir():
        env_problems, n_files = validate_environment_folder(home_environments)
        reports.append(ValidationReport(env_problems, {}))
        checked[str(home_environments)] = (n_files, n_files)
    report = ValidationReport([problem for r in reports for problem in r.problems], checked)
    if not report.ok:
        for problem in report.problems:
            print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    if not no_balance:
        _balance_warnings(paths)
    rows = [[where, files, records] for where, (files, records) in report.checked.items()]
    print_table("", ["data", "files", "records"], rows)
    total = sum(n for _, n in report.checked.values())
    print(f"ok: {total} records in {sum(f for f, _ in report.checked.values())} files, no problems")


def _balance_warnings(paths: list[Path | None]) -> None:
    """One ``warning:`` line per data file whose reply pairs fail the balance checks."""
    from ..data.balance import REPLY_PAIRS, describe_unbalanced, pairs_of, tokenizer_counter, unbalanced
    from ..data.records import RESOURCES, read_jsonl

    files = []
    for p in paths:
        root = Path(p) if p is not None else RESOURCES
        if root.is_file() and root.suffix != ".jsonl":
            continue  # an environment file: no reply pairs
        files += [root] if root.is_file() else sorted(f for kind in REPLY_PAIRS for f in (root / kind).glob("*/*.jsonl"))
    count_tokens = None
    for f in files:
        records = read_jsonl(f)
        if not any(pairs_of(spec, records) for spec in REPLY_PAIRS.values()):
            continue
        count_tokens = count_tokens or tokenizer_counter()
        failing = unbalanced(records, count_tokens)
        if failing:
            print(f"warning: {f}: reply pairs fail the balance checks: {describe_unbalanced(failing)} "
                  f"(details: vgbench data stats; `build-task` refuses such data without --allow-unbalanced)",
                  file=sys.stderr)


@data_group.command("stats")
@click.argument("path", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option("--value-set", "value_set", help="Only this value set.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--no-embeddings", is_flag=True, help="Skip near-duplicate detection (no model is loaded).")
@click.option("--threshold", type=click.FloatRange(-1.0, 1.0), default=0.9, show_default=True,
              help="Cosine similarity at or above which two user messages/questions count as near duplicates.")
@click.option("--no-balance", is_flag=True,
              help="Skip the reply balance checks (token lengths need the subject model's tokenizer).")
@model_option
@data_option
def stats_command(path: Path | None, value_set: str | None, as_json: bool, no_embeddings: bool,
                  threshold: float, no_balance: bool, model: str) -> None:
    """Counts per split and kind, competing values, length ratios, keyword leaks, near duplicates, targets,
    and whether each value's two replies are balanced in length and register."""
    from ..data.records import RESOURCES
    from ..data.schema import value_set_problem
    from ..data.stats import stats_value_set_names, value_set_stats

    root = _existing(path)
    if root is not None and root.resolve() == RESOURCES.resolve():
        root = None
    names = stats_value_set_names(root)
    if value_set is not None:
        if value_set not in names:
            where = root or "the data search path (--data, VGBENCH_DATA, $VGBENCH_HOME/generated, shipped data)"
            raise DataError(f"no data for value set {value_set!r} under {where}; "
                            f"value sets with data: {', '.join(names) or 'none'}")
        names = [value_set]
    if not names:
        raise DataError(f"{root}: no scenarios/, persona/ or topics/ data here; pass a folder laid out like vgbench/resources")
    for name in names:
        problems = value_set_problem(name, root, str(root or RESOURCES))[1]
        if problems:
            raise DataError(str(problems[0]))
    from ..data.balance import tokenizer_counter

    count_tokens = None if no_balance else tokenizer_counter(model)
    results = {}
    for name in names:
        if not no_embeddings and not as_json:
            progress(f"{name}: embedding user messages and questions for near-duplicate detection")
        results[name] = value_set_stats(name, root, embeddings=not no_embeddings, threshold=threshold,
                                        count_tokens=count_tokens)
    if as_json:
        print_json(results)
        return
    for stats in results.values():
        _print_value_set(stats)
        _print_balance(stats)
    for stats in results.values():
        print(stats["summary"])
        for kind in (stats["balance"] or {}).values():
            print(f"{stats['value_set']}: {'PASS' if kind['passes'] else 'FAIL'} {kind['summary']}")


def _print_balance(stats: dict) -> None:
    """Per value: token lengths, ratio, who is longer, marker counts, verdict; then the side-predictive words."""
    for kind, b in (stats["balance"] or {}).items():
        first, second = b["sides"]
        markers = list(next((v["markers"] for v in b["values"].values() if v.get("markers")), {}))
        rows = []
        for vid, v in b["values"].items():
            if not v["n_pairs"]:
                continue
            rows.append([vid, v["n_pairs"], f"{v['mean_tokens'][0]:.1f} / {v['mean_tokens'][1]:.1f}",
                         v["median_token_ratio"], f"{v['longer_share']['first']:.0%} / {v['longer_share']['second']:.0%}",
                         *(f"{v['markers'][m]['first']}/{v['markers'][m]['second']}" for m in markers),
                         "pass" if v["passes"] else "FAIL"])
        print_table(f"{stats['value_set']} {kind}: {first} vs {second} (tokens: subject model's tokenizer)",
                    ["value", "pairs", "mean tokens", "median ratio", "longer", *markers, "balance"], rows)
        words = ", ".join(f"{w['word']} ({w['first']}/{w['second']})" for w in b["side_predictive_words"])
        print(f"  most side-predictive words (chi-square, {first}/{second} replies containing it): {words}")
        print()


def _print_value_set(stats: dict) -> None:
    """The per-value table, the failing targets and the near-duplicate pairs of one value set."""
    columns, getters = ["value"], []

    def col(name, kind, get):
        columns.append(name)
        getters.append(lambda s: get(s[kind]) if s.get(kind) else None)

    kinds = stats["kinds"]
    if "scenarios" in kinds:
        col("scen train", "scenarios", lambda k: k["splits"]["train"])
        col("scen eval", "scenarios", lambda k: k["splits"]["eval"])
        col("both replies", "scenarios", lambda k: k["with_both_replies"])
        col("competing", "scenarios", lambda k: k["competing_values"])
        col("ratio f/i", "scenarios", lambda k: k["length_ratio"])
        col("kw replies", "scenarios", lambda k: k["keyword_replies"])
    if "persona" in kinds:
        col("persona inst", "persona", lambda k: k["kinds"]["instruction"]["total"])
        col("persona q", "persona", lambda k: k["kinds"]["question"]["total"])
        col("heldout", "persona", lambda k: k["splits"]["heldout"])
    if "topics" in kinds:
        col("topic q", "topics", lambda k: k["kinds"]["question"]["total"])
        col("topic pairs", "topics", lambda k: k["kinds"]["pair"]["total"])
        col("ratio s/o", "topics", lambda k: k["length_ratio"])
        col("pair kw", "topics", lambda k: k["keyword_replies"])
    rows = [[vid, *(g(s) for g in getters)] for vid, s in stats["values"].items()]
    print_table(f"{stats['value_set']} ({', '.join(kinds) or 'no data'})", columns, rows)
    for check in stats["targets"]:
        if check["failing"]:
            print(f"  not met: {check['target']}: {', '.join(check['failing'])}")
    dups = stats["near_duplicates"]
    if dups is not None:
        print(f"  near duplicates (cosine ≥ {stats['near_duplicate_threshold']}): {len(dups)}")
        for d in dups:
            a, b = d["a"], d["b"]
            print(f"    {d['similarity']:.3f}  {a['id']} ({a['split']}, {a['where']})  ~  {b['id']} ({b['split']}, {b['where']})")
    print()


@data_group.command("generate")
@click.option("--value-set", "value_set", required=True, help="Built-in name or a YAML/JSON value-set file.")
@click.option("--generator", required=True,
              help="openai:MODEL (OpenAI-compatible endpoint: OPENAI_BASE_URL, OPENAI_API_KEY) or hf:PATH_OR_ID "
                   "(hf:embedded: the embedded SmolLM2).")
@click.option("--kind", type=click.Choice(["scenarios", "persona"]), default="scenarios", show_default=True)
@click.option("--per-pair", type=click.IntRange(1, 1000), default=4, show_default=True,
              help="Scenarios per ordered value pair; for persona: instruction pairs per value (and 4× as many questions).")
@click.option("--values", "values", default="", help="Only these target values (comma-separated ids); default: all.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Output folder (default: $VGBENCH_HOME/generated).")
@click.option("--resume", is_flag=True, help="Continue an earlier run into the same folder; finished units are kept.")
@click.option("--dedup-threshold", type=click.FloatRange(-1.0, 1.0), default=0.9, show_default=True,
              help="MiniLM cosine at or above which a new record counts as a near duplicate of an accepted one.")
@click.option("--temperature", type=click.FloatRange(0.0, 2.0), default=0.7, show_default=True)
@click.option("--max-tokens", type=click.IntRange(16, 8192), default=400, show_default=True,
              help="Longest reply asked of the generator (outlines and questions use at most 120).")
@click.option("--retries", type=click.IntRange(0, 20), default=4, show_default=True,
              help="openai: retries of a failed request (exponential backoff) before giving up.")
@click.option("--retry-wait", type=click.FloatRange(0.0, 600.0), default=2.0, show_default=True,
              help="openai: seconds before the first retry; doubled for each next one.")
@click.option("--timeout", type=click.FloatRange(1.0, 3600.0), default=600.0, show_default=True,
              help="openai: seconds to wait for one reply.")
@click.option("--device", help="hf: torch device (default: cuda if available, else cpu).")
def generate_command(value_set, generator, kind, per_pair, values, out, resume, dedup_threshold, temperature,
                     max_tokens, retries, retry_wait, timeout, device) -> None:
    """Write conflict scenarios or persona prompts with a generator model (ConflictScope's method)."""
    from ..data.generate import Settings, generate
    from ..models.chat_client import make_client
    from ..store import vgbench_home
    from ..value_sets import resolve_value_set
    from .display import ProgressFactory

    vs = resolve_value_set(value_set)
    targets = [v.strip() for v in values.split(",") if v.strip()] or vs.ids
    unknown = [v for v in targets if v not in vs.ids]
    if unknown:
        raise DataError(f"--values: {unknown[0]!r} is not an id of value set {vs.name!r}; use some of {', '.join(vs.ids)}")
    out = out or vgbench_home() / "generated"
    client = make_client(generator, vgbench_home() / "cache", retries=retries, retry_wait=retry_wait,
                         timeout=timeout, device=device)
    settings = Settings(per_pair=per_pair, temperature=temperature, max_tokens=max_tokens,
                        dedup_threshold=dedup_threshold)
    bars = ProgressFactory()
    try:
        result = generate(vs, client, kind, out, targets=targets, settings=settings, resume=resume, tracker=bars)
    finally:
        bars.close()
    done = result["planned"] - result["already_done"]
    rejected = sum(result["rejected"].values())
    reasons = ", ".join(f"{stage}: {n}" for stage, n in sorted(result["rejected"].items())) or "none"
    rate = f"{result['accepted'] / done:.0%}" if done else "—"
    print(f"{kind} for {vs.name} with {generator}: {result['accepted']} accepted, {rejected} rejected ({reasons}), "
          f"acceptance {rate}; {result['already_done']} of {result['planned']} units were already done")
    print(f"wrote {result['folder']} (rejections and reasons: {result['checkpoint']}); check with: vgbench data validate {out}")


data_group.add_command(render_command)
