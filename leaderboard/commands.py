"""The leaderboard's CLI verbs, added to ``vgbench`` through the ``register_commands`` hook:
``vgbench leaderboard build|publish|add`` and ``vgbench submit``. Imports click only; the work is imported
inside each command so ``vgbench --help`` stays fast."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from vgbench.hookspecs import hookimpl

SUBMISSIONS_HELP = ("Folder of accepted submissions (repeatable). Default: the shipped baselines and "
                    "$VGBENCH_HOME/leaderboard/submissions; with --submissions, only the folders given "
                    "(add --with-shipped to include the baselines).")

INCLUDE_INVALID = click.option(
    "--include-invalid", is_flag=True,
    help="Count tasks that failed their validity gate in mean ρ and Borda (left out by default).")


def _sources(submissions: tuple[Path, ...], with_shipped: bool) -> list[Path]:
    """The submission folders a site is built from, shipped baselines first (later folders win)."""
    from .layout import SHIPPED_SUBMISSIONS_DIR, user_submissions_dir

    if not submissions:
        return [SHIPPED_SUBMISSIONS_DIR, user_submissions_dir()]
    return ([SHIPPED_SUBMISSIONS_DIR] if with_shipped else []) + [Path(p) for p in submissions]


@click.group("leaderboard")
def leaderboard_group() -> None:
    """Build, publish and add to the leaderboard (a static site)."""


@leaderboard_group.command("build")
@click.option("--out", "out_dir", default="leaderboard-site", show_default=True, type=click.Path(path_type=Path),
              help="Folder for the static site.")
@click.option("--submissions", "submissions", multiple=True, type=click.Path(path_type=Path), help=SUBMISSIONS_HELP)
@click.option("--with-shipped", is_flag=True, help="Include the shipped baselines along with --submissions.")
@INCLUDE_INVALID
def build_command(out_dir: Path, submissions: tuple[Path, ...], with_shipped: bool, include_invalid: bool) -> None:
    """Build the static site: sortable tables per view (ρ, ρ/ceiling, mean, Borda, tied ranks, the null band),
    a page per task (forest plots, validity, details) and per representation."""
    from .site import build_site

    index, n = build_site(_sources(submissions, with_shipped), out_dir, include_invalid=include_invalid)
    print(f"leaderboard of {n} submissions: {index}")


@leaderboard_group.command("publish")
@click.option("--to", "target", required=True, help="Git repository URL or path (e.g. a bare repository).")
@click.option("--branch", default="gh-pages", show_default=True)
@click.option("--site", "site_dir", type=click.Path(path_type=Path), help="An already built site (default: build now).")
@click.option("--submissions", "submissions", multiple=True, type=click.Path(path_type=Path), help=SUBMISSIONS_HELP)
@click.option("--with-shipped", is_flag=True, help="Include the shipped baselines along with --submissions.")
@INCLUDE_INVALID
def publish_command(target: str, branch: str, site_dir: Path | None, submissions: tuple[Path, ...],
                    with_shipped: bool, include_invalid: bool) -> None:
    """Commit the built site to a branch of a git repository (ready for GitHub Pages)."""
    from .publish import publish_site
    from .site import build_site

    with tempfile.TemporaryDirectory(prefix="vgbench-site-") as tmp:
        if site_dir is None:
            site_dir = Path(tmp)
            build_site(_sources(submissions, with_shipped), site_dir, include_invalid=include_invalid)
        commit = publish_site(site_dir, target, branch)
    print(f"published to {target} branch {branch}: {commit}")


@leaderboard_group.command("add")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace submissions already in the leaderboard.")
@click.option("--submissions", "submissions", type=click.Path(path_type=Path),
              help="Folder to write the accepted submissions to (default: $VGBENCH_HOME/leaderboard/submissions).")
def add_command(bundle: Path, force: bool, submissions: Path | None) -> None:
    """Check a submission bundle (hashes, paths, task versions, value ids, recomputed ρ) and accept it."""
    from .accept import add_bundle
    from .layout import user_submissions_dir

    folder = Path(submissions) if submissions else user_submissions_dir()
    written = add_bundle(bundle, folder, force=force)
    print(f"accepted {len(written)} submissions from {bundle} into {folder}:")
    for path in written:
        print(f"  {path}")


@click.command("submit")
@click.option("--rep", "rep_name", required=True, help="Representation whose stored results to submit.")
@click.option("--model", help="Only results for this subject model (default: all).")
@click.option("--option", "-o", "options", multiple=True, help="Choose a config when several are stored (key=value).")
@click.option("--out", "out_file", type=click.Path(path_type=Path), help="Bundle file (default: REP.vgbench-bundle.json).")
def submit_command(rep_name: str, model: str | None, options: tuple[str, ...], out_file: Path | None) -> None:
    """Package stored results, similarity, ground truth, provenance, plugin name/version and sha256 hashes."""
    from vgbench.cli.display import progress
    from vgbench.cli.common import split_options
    from vgbench.store import safe_name

    from .bundle import create_bundle, write_bundle

    progress(f"packing stored results of {rep_name}")
    bundle = create_bundle(rep_name, split_options(options), model)
    out_file = out_file or Path(f"{safe_name(rep_name)}.vgbench-bundle.json")
    write_bundle(bundle, out_file)
    n = sum(f["path"].startswith("results/") for f in bundle["files"])
    print(f"bundle of {n} results for {rep_name} ({bundle['plugin']['distribution']} "
          f"{bundle['plugin']['version']}): {out_file}")
    print(f"check it with `vgbench leaderboard add {out_file}`")


@hookimpl
def register_commands(cli):
    """``vgbench leaderboard …`` and ``vgbench submit``."""
    cli.add_command(leaderboard_group)
    cli.add_command(submit_command)
