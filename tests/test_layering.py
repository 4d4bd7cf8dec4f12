"""DESIGN.md's layering, checked on the source: arrows point down only,
`cli -> report -> harness -> {proofs, sae, probing, editing} -> subjects -> core`, and a family
never imports another family, except probing using the `sae` package's public API."""

from __future__ import annotations

import ast
from pathlib import Path

import interpgym

LAYERS = {"core": 0, "subjects": 1, "proofs": 2, "sae": 2, "probing": 2, "editing": 2, "harness": 3, "report": 4, "cli": 5}
ALLOWED_ACROSS_FAMILIES = {("probing", "interpgym.sae")}  # the sae package's public API only, not its modules
ROOT = Path(interpgym.__file__).parent


def _package_of(path: Path) -> str:
    parts = path.relative_to(ROOT).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def _interpgym_imports(path: Path) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("interpgym."):
            modules.append(node.module)
        elif isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names if alias.name.startswith("interpgym.")]
    return modules


def layering_violations() -> list[str]:
    """Every import of a module in a higher layer, or of another family, as 'file -> module'."""
    violations = []
    for path in sorted(ROOT.rglob("*.py")):
        here = _package_of(path)
        if here not in LAYERS:
            continue
        for module in _interpgym_imports(path):
            there = module.split(".")[1]
            if there == here or there not in LAYERS or (here, module) in ALLOWED_ACROSS_FAMILIES:
                continue
            if LAYERS[there] > LAYERS[here] or LAYERS[there] == LAYERS[here]:
                violations.append(f"{path.relative_to(ROOT)} -> {module}")
    return violations


def test_every_package_sits_in_a_layer() -> None:
    packages = {_package_of(p) for p in ROOT.rglob("*.py")} - {"__init__", "__main__"}
    assert packages <= set(LAYERS), f"packages outside DESIGN.md's layers: {sorted(packages - set(LAYERS))}"


def test_imports_point_down_only() -> None:
    assert layering_violations() == []


def test_the_check_sees_an_upward_import(tmp_path: Path, monkeypatch) -> None:
    """The check itself: a harness module importing the report is reported."""
    fake = tmp_path / "interpgym"
    (fake / "harness").mkdir(parents=True)
    (fake / "harness" / "bad.py").write_text("from interpgym.report.page import write_report\n")
    (fake / "sae").mkdir()
    (fake / "sae" / "ok.py").write_text("from interpgym.core.errors import UserError\n")
    monkeypatch.setitem(globals(), "ROOT", fake)
    assert layering_violations() == ["harness/bad.py -> interpgym.report.page"]
