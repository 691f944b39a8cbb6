"""The built leaderboard opened in a real headless Chromium (Debian's, driven by playwright): it loads with
no console errors, a column header sorts the table, a representation page shows its map, names are text, an
invalid task is shown as such and left out of the mean, and its page shows why and its forest plot."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vgbench.fingerprint import fingerprint

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def chromium():
    """Debian's chromium and the playwright package, installed by .ci/setup-browser when missing."""
    if not shutil.which("chromium") or importlib.util.find_spec("playwright") is None:
        if not shutil.which("apt-get") and not shutil.which("chromium"):
            pytest.skip("chromium is missing and apt-get is not available to install it (see .ci/setup-browser)")
        proc = subprocess.run(["bash", str(ROOT / ".ci" / "setup-browser"), sys.executable],
                              capture_output=True, text=True, timeout=1200)
        if not shutil.which("chromium"):
            reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"could not install Debian chromium with apt-get: {reason}")
        assert proc.returncode == 0, proc.stderr
        importlib.invalidate_caches()
    return shutil.which("chromium")


def _submit(home: Path, seed: int, subs: Path) -> None:
    from vgbench.api import RunContext
    from vgbench.evaluation import collect_targets, evaluate, make_representation
    from vgbench.value_sets import resolve_value_set
    from vgbench_leaderboard.accept import add_bundle
    from vgbench_leaderboard.bundle import create_bundle, write_bundle

    vs = resolve_value_set("constraints9")
    context = RunContext(home=home)
    targets, _ = collect_targets(vs, context, ["prompt_steering"], [])  # the matrix shipped for the embedded model
    evaluate(make_representation("random", {"seed": str(seed)}), vs, targets, context)
    bundle = home / f"bundle-{seed}.json"
    write_bundle(create_bundle("random", {"seed": str(seed)}, home=home), bundle)
    add_bundle(bundle, subs)


WHY = "judges are value-blind (judge x pair interaction p = 0.62)"
#: Ranked representations made from random's submission: (name, ρ prompt_steering (valid), ρ judge_agreement
#: (not valid)). EVIL has no judge_agreement score.
FAKES = [(EVIL, 0.5, None), ("alpha", 0.2, 0.9), ("beta", -0.1, -0.8)]


def _fake(base: dict, name: str, task: str, rho: float) -> dict:
    sub = json.loads(json.dumps(base))
    sub["representation"].update(name=name, config_hash=fingerprint(name, 12), uses_subject_model=name == "alpha")
    sub["task"]["name"] = sub["ground_truth"]["task"] = sub["score"]["task"] = task
    sub["score"].update(representation=name, rho=rho, ci_low=rho - 0.1, ci_high=rho + 0.1)
    sub["plugin"].update(distribution=name)
    return sub


def _set_validity(sub: dict) -> dict:
    """Every score of prompt_steering valid, of judge_agreement not valid (whatever the scoring said)."""
    valid = sub["score"]["task"] != "judge_agreement"
    sub["score"]["validity"] = {"gate": "own_value_effect", "verdict": "valid" if valid else "not valid",
                                "reason": "" if valid else WHY}
    return sub


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A site with two configs of `random` (the null band), three ranked representations, one named like a script,
    and an invalid task (judge_agreement), served on 127.0.0.1."""
    from vgbench_leaderboard.site import build_site

    root = tmp_path_factory.mktemp("browser")
    subs = root / "subs"
    for seed in (0, 1):
        _submit(root / "home", seed, subs)
    base = json.loads(next(subs.rglob("prompt_steering.json")).read_text())
    for k, (name, steering, judge) in enumerate(FAKES):
        (subs / f"fake-{k}-steering.json").write_text(json.dumps(_fake(base, name, "prompt_steering", steering)))
        if judge is not None:
            (subs / f"fake-{k}-judge.json").write_text(json.dumps(_fake(base, name, "judge_agreement", judge)))
    for path in subs.rglob("*.json"):
        path.write_text(json.dumps(_set_validity(json.loads(path.read_text()))))
    build_site(subs, root / "site")
    handler = functools.partial(_QuietHandler, directory=str(root / "site"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def index_page(chromium: str, site: str):
    """The site's index.html in headless Chromium: (page, console and page errors, dialogs shown)."""
    from playwright.sync_api import sync_playwright

    errors, dialogs = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(f"{site}/index.html", wait_until="load")
            yield page, errors, dialogs
        finally:
            browser.close()


def test_page_sorts_shows_maps_and_escapes_names(chromium, site, tmp_path):
    with index_page(chromium, site) as (page, errors, dialogs):
        headers = page.eval_on_selector_all("#leaderboard-0 thead th", "hs => hs.map(h => h.textContent)")
        col = headers.index("ρ prompt_steering")
        header = page.locator("#leaderboard-0 thead th").filter(has_text=re.compile(r"^ρ prompt_steering$"))

        def column() -> list[float]:
            keys = page.eval_on_selector_all(
                "#leaderboard-0 tbody tr", f"rows => rows.map(r => r.cells[{col}].getAttribute('data-sort'))")
            return [float(k) for k in keys]

        header.click()
        assert header.get_attribute("aria-sort") == "ascending"
        ascending = column()
        assert len(ascending) == 3 and ascending == sorted(ascending) and len(set(ascending)) == 3
        header.click()
        assert header.get_attribute("aria-sort") == "descending" and column() == sorted(ascending, reverse=True)

        assert page.get_by_text(EVIL, exact=True).count() >= 1  # the name is shown as text
        page.screenshot(path=str(tmp_path / "index.png"), full_page=True)

        page.get_by_role("link", name=EVIL).first.click()
        page.wait_for_load_state("load")
        assert page.locator("h1").inner_text() == EVIL
        page.goto(f"{site}/index.html", wait_until="load")
        page.get_by_role("link", name="random [seed=0]").first.click()
        page.wait_for_load_state("load")
        image = page.locator("img.map").first
        image.wait_for()
        assert image.evaluate("img => img.complete && img.naturalWidth") > 0
        page.screenshot(path=str(tmp_path / "rep.png"), full_page=True)
    assert dialogs == [], dialogs
    assert errors == [], errors


def test_an_invalid_task_is_shown_as_such_and_left_out_of_the_mean(chromium, site, tmp_path):
    with index_page(chromium, site) as (page, errors, dialogs):
        table = page.locator("#leaderboard-0")
        headers = table.locator("thead th").all_inner_texts()
        assert "ρ judge_agreement (not valid)" in headers and "ρ prompt_steering" in headers
        steering, judge, mean = (headers.index(h) for h in ("ρ prompt_steering", "ρ judge_agreement (not valid)",
                                                             "mean ρ"))
        for name, rho, judge_rho in FAKES:
            cells = table.locator("tbody tr").filter(has=page.get_by_role("link", name=name, exact=True)) \
                .locator("td").all_inner_texts()
            ci = f"[{rho - 0.1:.2f}, {rho + 0.1:.2f}]"
            assert cells[steering] == f"{rho:.3f} {ci}" and cells[mean] == f"{rho:.3f}"  # judge_agreement left out
            shown = "—" if judge_rho is None else f"{judge_rho:.3f} [{judge_rho - 0.1:.2f}, {judge_rho + 0.1:.2f}]"
            assert cells[judge] == shown  # shown all the same
        ranks = table.locator("tbody tr td:first-child").all_inner_texts()
        assert ranks == ["1", "2", "3"]  # CIs ±0.1 around 0.5, 0.2, -0.1: apart, so no ties
        line = page.locator(".summary-line").filter(has_text="Left out of mean ρ and Borda").first
        assert line.is_visible() and f"judge_agreement: not valid on this model: {WHY}" in line.inner_text()
        band = table.locator("tfoot tr").first.inner_text()
        assert band.startswith("—") and "null band (random [seed=0], random [seed=1])" in band
        assert "ceiling (predictor bound)" in table.locator("tfoot tr").nth(1).inner_text()

        page.get_by_role("link", name="judge_agreement").click()
        page.wait_for_load_state("load")
        assert page.locator("h1").inner_text() == "judge_agreement"
        verdict = page.locator("p.validity.not-valid").inner_text()
        assert f"not valid on this model: {WHY}" in verdict and "left out of mean ρ and Borda" in verdict
        forest = page.locator("img.forest").first
        forest.wait_for()
        assert forest.evaluate("img => img.complete && img.naturalWidth") > 0
        assert "Forest plot of judge_agreement" in forest.get_attribute("alt")
        assert page.locator("#details-raw tbody tr").count() == 2  # alpha and beta scored it
        page.screenshot(path=str(tmp_path / "task.png"), full_page=True)
    assert dialogs == [], dialogs
    assert errors == [], errors


def test_the_sees_filter_shows_only_the_rows_that_see_the_chosen_thing(chromium, site):
    with index_page(chromium, site) as (page, errors, dialogs):
        control = page.locator("#sees-filter-control")
        assert control.is_visible()  # hidden in the markup, shown by filter.js
        table = page.locator("#leaderboard-0")
        headers = table.locator("thead th").all_inner_texts()
        sees = headers.index("sees")

        def shown() -> dict[str, str]:
            rows = table.locator("tbody tr:visible")
            return {rows.nth(k).locator("td").nth(1).inner_text(): rows.nth(k).locator("td").nth(sees).inner_text()
                    for k in range(rows.count())}

        assert shown() == {EVIL: "—", "alpha": "subject model", "beta": "—"}
        page.select_option("#sees-filter", "subject model")
        assert shown() == {"alpha": "subject model"}
        page.select_option("#sees-filter", "—")
        assert set(shown()) == {EVIL, "beta"}
        page.select_option("#sees-filter", "")
        assert len(shown()) == 3
    assert errors == [] and dialogs == []
