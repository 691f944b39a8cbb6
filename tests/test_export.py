"""``vgbench export``: npz and lm-evaluation-harness steering files, the layer convention, warm caches, bad input."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, home_with_shared_models, run_cli
from test_plugins import fake_distribution
from vgbench.api import RunContext
from vgbench.evaluation import make_representation

# Tiny persona settings: one pro/anti pair, one question, 4 tokens, layer selection over one candidate layer and
# two steering strengths.
TINY = {"n_instructions": 1, "n_questions": 1, "max_new_tokens": 4, "n_heldout": 1, "n_candidate_layers": 1,
        "alphas": "0.125,0.5"}
TINY_ARGS = [arg for key, value in TINY.items() for arg in ("-o", f"{key}={value}")]
STEER_COEF = 4.0  # large enough that the neighbouring layers' steering differs clearly
PICKED = ["no_white_lies", "no_stereotypes"]


def export(home: Path, *args: str, rep: str = "persona"):
    """``vgbench export --rep REP ARGS`` with ``home`` as VGBENCH_HOME."""
    options = TINY_ARGS if rep == "persona" else []
    return run_cli("export", "--rep", rep, *options, *args, env={"VGBENCH_HOME": str(home)})


@pytest.fixture(scope="module")
def exported(tmp_path_factory, shared_model_cache):
    """One home: persona vectors exported cold as lm-eval files, then (warm) as npz and as unit-scaled lm-eval."""
    root = tmp_path_factory.mktemp("export")
    home = home_with_shared_models(root / "home", shared_model_cache)
    out = {"home": home, "steer": root / "steer", "npz": root / "persona.npz", "unit": root / "unit",
           "chosen": root / "chosen"}
    for args in (["--format", "lm-eval", "--coef", str(STEER_COEF), "--out", str(out["steer"])],
                 ["--format", "npz", "--out", str(out["npz"])],
                 ["--format", "lm-eval", "--coef", "2.5", "--scale", "unit", "--value", PICKED[0], "--value", PICKED[1],
                  "--out", str(out["unit"])],
                 ["--format", "lm-eval", "--value", PICKED[0], "--out", str(out["chosen"])]):
        proc = export(home, *args)
        assert proc.returncode == 0, proc.stderr
    return out


def load_npz(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def load_steering(path: Path) -> dict:
    """A steering file read as lm-evaluation-harness's steered model reads it."""
    import torch

    return torch.load(path, weights_only=True)


@contextmanager
def lm_eval_style_steering(model, config: dict):
    """Steer ``model`` as lm-evaluation-harness's steered model does with a ``.pt`` config: each hook point is a
    module name under ``model.base_model``; a forward hook adds coefficient × vector to its output (to the first
    element when the output is a tuple)."""
    modules = dict(model.base_model.named_modules())
    assert set(config) <= set(modules), set(config) - set(modules)
    handles = []
    for name, entry in config.items():
        assert entry["action"] == "add"
        delta = entry["steering_coefficient"] * entry["steering_vector"]

        def hook(module, args, output, delta=delta):
            if isinstance(output, tuple):
                return (output[0] + delta, *output[1:])
            return output + delta

        handles.append(modules[name].register_forward_hook(hook))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.slow
def test_npz_round_trip_gives_the_persona_vectors_ids_layer_and_provenance(exported, embedded, constraints9):
    data = load_npz(exported["npz"])
    again = make_representation("persona", TINY).encode(constraints9, RunContext(home=exported["home"]))  # warm
    assert data["vectors"].dtype == np.float32 and data["vectors"].shape == again.vectors.shape
    assert np.array_equal(data["vectors"], again.vectors.astype(np.float32))
    assert list(data["value_ids"]) == constraints9.ids
    assert list(data["names"]) == [v.name for v in constraints9.values]
    layer = int(data["layer"])
    assert layer == again.extra["layer"] and str(data["hook_point"]) == f"layers.{layer - 1}"
    assert str(data["module_path"]) == f"model.layers.{layer - 1}"
    assert "output of decoder block k counting blocks from 1" in str(data["convention"])
    prov = json.loads(str(data["provenance"]))
    assert prov["representation"] == "persona" and prov["config"] == again.config
    assert prov["model"]["weights_hash"] == embedded.weights_hash
    assert prov["data_hash"] == again.extra["data_hash"] and prov["seed"] == 0
    assert prov["packages"]["torch"] and prov["command"].startswith("vgbench export --rep persona")


@pytest.mark.slow
def test_lm_eval_default_is_the_unit_vector_at_the_chosen_coefficient(exported, constraints9):
    npz = load_npz(exported["npz"])
    again = make_representation("persona", TINY).encode(constraints9, RunContext(home=exported["home"]))  # warm
    chosen = again.extra["steering_coef"]
    row = next(r for r in again.extra["layer_curve"] if (r["layer"], r["alpha"]) == (again.extra["layer"],
                                                                                        again.extra["alpha"]))
    assert chosen == row["coef"] > 0 and float(npz["steering_coef"]) == chosen
    sidecar = json.loads((exported["chosen"] / "steering.json").read_text())
    assert (sidecar["scale"], sidecar["coefficient"], sidecar["chosen_coefficient"]) == ("unit", chosen, chosen)
    config = load_steering(exported["chosen"] / f"{PICKED[0]}.pt")[str(npz["hook_point"])]
    assert config["steering_coefficient"] == pytest.approx(chosen, rel=1e-6)
    assert float(np.linalg.norm(config["steering_vector"].numpy())) == pytest.approx(1.0, rel=1e-5)
    steer = json.loads((exported["steer"] / "steering.json").read_text())
    assert steer["scale"] == "raw" and steer["coefficient"] == STEER_COEF  # --coef alone keeps the raw vector


@pytest.mark.slow
def test_lm_eval_files_have_the_steered_model_structure(exported, embedded):
    npz = load_npz(exported["npz"])
    hook = str(npz["hook_point"])
    sidecar = json.loads((exported["steer"] / "steering.json").read_text())
    assert [e["value"] for e in sidecar["files"]] == list(npz["value_ids"])
    assert (sidecar["layer"], sidecar["hook_point"], sidecar["coefficient"]) == (int(npz["layer"]), hook, STEER_COEF)
    assert sidecar["provenance"]["model"]["weights_hash"] == embedded.weights_hash
    assert Path(sidecar["pretrained"]).resolve() == Path(embedded.path).resolve()
    for row, entry in enumerate(sidecar["files"]):
        path = exported["steer"] / entry["file"]
        config = load_steering(path)
        assert list(config) == [hook]
        assert set(config[hook]) == {"action", "steering_coefficient", "steering_vector", "bias"}
        assert config[hook]["action"] == "add" and config[hook]["bias"] is None
        assert config[hook]["steering_coefficient"] == STEER_COEF
        assert np.array_equal(config[hook]["steering_vector"].numpy(), npz["vectors"][row])
        assert entry["command"].startswith("lm_eval --model steered --model_args ")
        assert f"pretrained={sidecar['pretrained']},steer_path={path.resolve()}," in entry["command"]
    readme = (exported["steer"] / "README.md").read_text()
    assert sidecar["baseline_command"] in readme and sidecar["files"][0]["command"] in readme and hook in readme

    unit = json.loads((exported["unit"] / "steering.json").read_text())
    assert [e["value"] for e in unit["files"]] == PICKED and unit["scale"] == "unit"
    assert sorted(p.name for p in exported["unit"].glob("*.pt")) == sorted(f"{v}.pt" for v in PICKED)
    for entry in unit["files"]:
        row = list(npz["value_ids"]).index(entry["value"])
        config = load_steering(exported["unit"] / entry["file"])[hook]
        assert config["steering_coefficient"] == 2.5
        assert entry["vector_norm"] == pytest.approx(float(np.linalg.norm(npz["vectors"][row])), rel=1e-6)
        assert np.allclose(config["steering_vector"].numpy() * entry["vector_norm"], npz["vectors"][row], rtol=1e-5)


@pytest.mark.slow
def test_the_exported_hook_point_steers_exactly_where_vgbench_steers(exported, backend):
    import torch

    from vgbench.models.backend import chat
    from vgbench.models.steering import steered_reply_logprobs

    npz = load_npz(exported["npz"])
    layer, row = int(npz["layer"]), 0
    config = load_steering(exported["steer"] / f"{npz['value_ids'][row]}.pt")
    prompts = [chat("Should I tell my friend the truth about her gift?"), chat("Describe a typical engineer.")]
    replies = ["Yes, kindly and honestly.", "They solve problems with care."]

    def with_steering(cfg) -> np.ndarray:
        with lm_eval_style_steering(backend.model, cfg):
            return np.array([s.total for s in backend.reply_logprobs(prompts, replies)])

    vgbench_steered = np.array([s.total for s in steered_reply_logprobs(
        backend, prompts, replies, layer, npz["vectors"][row], STEER_COEF)])
    exported_steered = with_steering(config)
    assert np.allclose(exported_steered, vgbench_steered, rtol=1e-5, atol=1e-5), (exported_steered, vgbench_steered)
    [(hook, entry)] = config.items()
    # the convention itself, checked against transformers: the hook point's output is hidden_states[layer]
    captured = {}

    def capture(module, args, output):
        captured["out"] = output[0] if isinstance(output, tuple) else output

    handle = dict(backend.model.base_model.named_modules())[hook].register_forward_hook(capture)
    ids = torch.tensor([backend.tok("Tell me about honesty.")["input_ids"]])
    try:
        with torch.inference_mode():
            hidden = backend.model(input_ids=ids, output_hidden_states=True).hidden_states
    finally:
        handle.remove()
    assert layer < len(hidden) - 1  # (the last index is after the final norm)
    assert torch.equal(captured["out"], hidden[layer]) and not torch.equal(captured["out"], hidden[layer - 1])
    unsteered = np.array([s.total for s in backend.reply_logprobs(prompts, replies)])
    assert np.abs(unsteered - vgbench_steered).max() > 1e-2  # the steering does something
    for neighbour in (layer - 1, layer + 1):  # one block off would not pass the first assertion
        shifted = with_steering({f"layers.{neighbour - 1}": entry})
        assert np.abs(shifted - vgbench_steered).max() > 1e-3, neighbour


@pytest.mark.slow
def test_a_warm_export_reads_the_persona_cache_and_writes_nothing_there(exported, tmp_path):
    def cache_files() -> dict:
        cache = exported["home"] / "cache"
        return {str(p.relative_to(cache)): (p.stat().st_ino, p.stat().st_mtime_ns)
                for kind in ("activations", "generations", "layer_selection") for p in (cache / kind).rglob("*")
                if p.is_file()}

    before = cache_files()
    assert any(k.startswith("activations") for k in before) and any(k.startswith("layer_selection") for k in before)
    proc = export(exported["home"], "--format", "npz", "--out", str(tmp_path / "again.npz"))
    assert proc.returncode == 0, proc.stderr
    assert cache_files() == before  # a recomputation rewrites (atomically: new inode) or adds cache files
    assert np.array_equal(load_npz(tmp_path / "again.npz")["vectors"], load_npz(exported["npz"])["vectors"])


def test_npz_of_a_representation_without_a_layer(isolated_home, tmp_path, constraints9):
    out = tmp_path / "random.npz"
    proc = export(isolated_home, "-o", "dim=8", "--format", "npz", "--value", "no_stereotypes", "--out", str(out),
                  rep="random")
    assert proc.returncode == 0, proc.stderr
    data = load_npz(out)
    expected = make_representation("random", {"dim": "8"}).encode(constraints9, RunContext()).vectors
    row = constraints9.ids.index("no_stereotypes")
    assert list(data["value_ids"]) == ["no_stereotypes"] and data["vectors"].dtype == np.float32
    assert np.array_equal(data["vectors"], expected[[row]].astype(np.float32))
    assert not {"layer", "hook_point", "convention"} & set(data)
    assert json.loads(str(data["provenance"]))["config"] == {"seed": 0, "dim": 8}


RESIDUAL_REP = """
import numpy as np
import vgbench
from vgbench.toolkit import RESIDUAL_LAYER

class Residual(vgbench.Representation):
    metadata = vgbench.RepresentationMetadata(name="residual_toy", version="1", uses_subject_model=True,
                                              description="random directions said to live at one layer",
                                              options=(vgbench.Option("at", int, 3, "layer", minimum=0, maximum=99),))
    def vectors(self, value_set, context):
        return np.random.default_rng(0).normal(size=(len(value_set), 576)), {RESIDUAL_LAYER: self.options["at"]}

@vgbench.hookimpl
def register_representations(register):
    register(Residual)
"""


def test_any_plugin_declaring_a_residual_layer_exports_steering_files(isolated_home, tmp_path, embedded):
    site = fake_distribution(tmp_path / "site", "residual-plugin", "residual_plugin", RESIDUAL_REP)
    env = {"PYTHONPATH": str(site), "VGBENCH_HOME": str(isolated_home)}
    proc = run_cli("export", "--rep", "residual_toy", "--format", "lm-eval", "--value", "no_white_lies",
                   "--out", str(tmp_path / "steer"), env=env)
    assert proc.returncode == 0, proc.stderr
    [file] = (tmp_path / "steer").glob("*.pt")
    assert list(load_steering(file)) == ["layers.2"]
    bad = run_cli("export", "--rep", "residual_toy", "-o", "at=99", "--format", "npz", "--out", str(tmp_path / "x.npz"),
                  env=env)
    assert_one_line_error(bad, "representation 'residual_toy'", "extra['residual_layer'] = 99", "1..30")


@pytest.mark.parametrize("args, fragments", [
    (["--rep", "random", "--format", "safetensors", "--out", "x"], ["'--format'", "'safetensors'", "'npz', 'lm-eval'"]),
    (["--rep", "random", "--format", "lm-eval", "--out", "x"],
     ["representation 'random'", "--format lm-eval", "supports --format npz"]),
    (["--rep", "category", "--format", "lm-eval", "--out", "x"],
     ["representation 'category'", "supports --format npz"]),
    (["--rep", "persona", "--format", "npz", "--value", "no_lies", "--out", "x.npz"],
     ["--value no_lies", "not a value of constraints9", "no_white_lies"]),
    (["--rep", "persona", "--format", "npz", "--coef", "2", "--out", "x.npz"], ["--coef and --scale", "lm-eval only"]),
    (["--rep", "persona", "--format", "lm-eval", "--coef", "nan", "--out", "x"], ["--coef nan", "finite"]),
    (["--rep", "persona", "--format", "lm-eval", "--coef", "1e9", "--out", "x"], ["'--coef'", "1000"]),
    (["--rep", "persona", "--format", "lm-eval", "--scale", "half", "--out", "x"], ["'--scale'", "'raw', 'unit'"]),
    (["--rep", "persona", "-o", "layr=3", "--format", "npz", "--out", "x.npz"], ["-o layr", "did you mean 'layer'"]),
    (["--rep", "persona", "--format", "npz"], ["Missing option '--out'"]),
])
def test_bad_export_input_is_one_line_before_any_model_is_loaded(tmp_path, args, fragments):
    home = tmp_path / "bare-home"
    assert_one_line_error(run_cli("export", *args, env={"VGBENCH_HOME": str(home)}), *fragments)
    assert not (home / "cache" / "models").exists()


def test_out_of_the_kind_the_format_writes(isolated_home, tmp_path):
    (tmp_path / "file").write_text("")
    assert_one_line_error(export(isolated_home, "--format", "npz", "--out", str(tmp_path), rep="random"),
                          f"--out {tmp_path}", "is a folder")
    assert_one_line_error(export(isolated_home, "--format", "lm-eval", "--out", str(tmp_path / "file")),
                          "is a file", "lm-eval writes a folder")


def test_layer_out_of_range(isolated_home, tmp_path, embedded):
    proc = export(isolated_home, "-o", "layer=99", "--format", "lm-eval", "--out", str(tmp_path / "steer"))
    assert_one_line_error(proc, "-o layer=99", "out of range", "1..30")
