"""The public toolkit: built-in plugins import only ``vgbench`` and ``vgbench.toolkit``, the toolkit is light to
import, every exported name resolves and is documented, and the task cache folder is spelt in one place."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PLUGIN_FOLDERS = ("tasks", "representations")
ALLOWED = {"vgbench", "vgbench.toolkit"}


def _vgbench_imports(path: Path) -> list[str]:
    """The absolute ``vgbench...`` modules a file imports, wherever the import statement sits."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return [m for m in found if m == "vgbench" or m.startswith("vgbench.")]


@pytest.mark.parametrize("folder", PLUGIN_FOLDERS)
def test_built_in_plugins_import_only_vgbench_and_the_toolkit(folder):
    files = sorted((ROOT / folder).glob("*.py"))
    assert files
    private = {f"{p.relative_to(ROOT)}: {m}" for p in files for m in _vgbench_imports(p) if m not in ALLOWED}
    assert not private, "import these through vgbench.toolkit (or export them there): " + ", ".join(sorted(private))


def test_the_import_check_sees_a_private_import(tmp_path):
    module = tmp_path / "plugin.py"
    module.write_text("from vgbench import Task\n\ndef f():\n    from vgbench.steps import StepCache\n")
    assert _vgbench_imports(module) == ["vgbench", "vgbench.steps"]


def test_importing_the_toolkit_and_the_built_in_plugins_imports_no_torch():
    code = ("import sys, vgbench.toolkit, vgbench_tasks.dpo_generalization, vgbench_tasks.drift_prediction, "
            "vgbench_tasks.judge_agreement, vgbench_representations.persona; "
            "print(sorted(m for m in ('torch', 'transformers', 'trl', 'nnsight') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_every_exported_name_resolves_and_an_unknown_one_is_an_attribute_error():
    import vgbench.toolkit as toolkit

    for name in toolkit.__all__:
        assert getattr(toolkit, name) is not None, name
    assert set(dir(toolkit)) == set(toolkit.__all__)
    with pytest.raises(AttributeError, match="no_such_helper"):
        toolkit.no_such_helper  # noqa: B018


def test_readme_documents_every_toolkit_name():
    import vgbench.toolkit as toolkit

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Toolkit for plugin authors", 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    documented = {name for cell in first_cells for name in re.findall(r"`(\w+)`", cell)}
    assert documented == set(toolkit.__all__)


def test_the_task_cache_folder_is_spelt_once():
    spelt = [f"{p.relative_to(ROOT)}" for folder in ("vgbench", *PLUGIN_FOLDERS, "leaderboard")
             for p in sorted((ROOT / folder).rglob("*.py")) if re.search(r'/ "tasks"|"tasks" /', p.read_text())]
    assert spelt == ["vgbench/api.py"]
