"""The stages of climdiff import one way only (docs/architecture.md, "Stages").

Every module of the package is parsed with :mod:`ast`, and every import of a climdiff module in
it (at module level or inside a function) must point at the same stage or an earlier one. A
later stage may use an earlier one; an earlier one never knows a later one, so e.g. rollout does
not pull in training code and evaluation does not pull in torch through the rollout writer.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "climdiff"

# Lowest first; the same order docs/architecture.md states.
STAGES = ("base", "data", "models", "train", "sampling", "bundle", "rollout", "evaluate", "experiment", "cli")
# The earlier stages each stage may import besides its own: narrower than "every earlier stage"
# where a stage has no business with one (rollout never needs training code; evaluation reads
# stores and needs no networks).
MAY_IMPORT = {
    "base": (),
    "data": ("base",),
    "models": ("base",),
    "train": ("base", "data", "models"),
    "sampling": ("base", "models"),
    "bundle": ("base", "data", "models", "sampling"),
    "rollout": ("base", "data", "models", "sampling", "bundle"),
    "evaluate": ("base", "data"),
    "experiment": ("base", "data", "models", "train", "sampling", "bundle", "rollout", "evaluate"),
    "cli": STAGES[:-1],
}

# Where each top-level module or subpackage sits. Subpackages name their stage; the shared
# top-level modules form the base layer every stage may import.
STAGE_OF = {
    "climdiff": "base",
    "climdiff.errors": "base",
    "climdiff.atomic": "base",
    "climdiff.zarr_io": "base",
    "climdiff.resume": "base",
    "climdiff.runtime": "base",
    "climdiff.progress": "base",
    "climdiff.seeding": "base",
    "climdiff.process_group": "base",
    "climdiff.metadata": "base",
    "climdiff.finite": "base",
    "climdiff.diskspace": "base",
    "climdiff.data": "data",
    "climdiff.models": "models",
    "climdiff.checkpoint": "models",  # the networks' file format: it builds models to load them
    "climdiff.train": "train",
    "climdiff.sampling": "sampling",
    "climdiff.bundle": "bundle",  # records the sampler's settings, so it sits above sampling
    "climdiff.assets": "bundle",  # the embedded default bundle
    "climdiff.rollout": "rollout",
    "climdiff.evaluate": "evaluate",
    "climdiff.export": "evaluate",  # reads finished stores, like evaluate
    "climdiff.experiment": "experiment",
    "climdiff.cli": "cli",
    "climdiff.__main__": "cli",
}


def module_name(path: Path) -> str:
    """The dotted name of a file under ``climdiff/``."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage_of(module: str) -> str | None:
    """The stage of a climdiff module: its own entry, or its top-level module's or subpackage's."""
    parts = module.split(".")
    if module == "climdiff":
        return STAGE_OF[module]
    return STAGE_OF.get(".".join(parts[:2])) if len(parts) > 1 else None


def imported_modules(module: str, source: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) for every climdiff module ``source`` imports, relative imports resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from climdiff import data` imports the subpackage climdiff.data
                sub = f"{base}.{alias.name}"
                found.append((node.lineno, sub if base == "climdiff" and sub in STAGE_OF else base))
    return [(line, name) for line, name in dict.fromkeys(found) if name == "climdiff" or name.startswith("climdiff.")]


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """Every import in ``source`` (the text of ``module``) that runs against the stage order."""
    own = stage_of(module)
    if own is None:
        return [f"{module} has no stage: add it to STAGE_OF and docs/architecture.md"]
    problems = []
    for line, target in imported_modules(module, source, is_package):
        theirs = stage_of(target)
        if theirs is None:
            problems.append(f"{module}:{line} imports {target}, which has no stage")
        elif theirs != own and theirs not in MAY_IMPORT[own]:
            order = "a later stage" if STAGES.index(theirs) > STAGES.index(own) else f"not one {own} may import"
            problems.append(f"{module}:{line} ({own}) imports {target} ({theirs}), {order}")
    return problems


def test_the_allowed_imports_point_only_at_earlier_stages() -> None:
    assert set(MAY_IMPORT) == set(STAGES)
    for stage, allowed in MAY_IMPORT.items():
        assert all(STAGES.index(other) < STAGES.index(stage) for other in allowed), stage


def test_every_import_follows_the_stage_order() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        problems += violations(module_name(path), path.read_text(), is_package=path.name == "__init__.py")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("module", "source", "offence"),
    [
        ("climdiff.rollout.engine", "from climdiff.train.loop import RUN_FILE", "climdiff.train.loop (train), not one"),
        ("climdiff.evaluate.sources", "from climdiff.rollout.writer import FORECAST_KIND", "(rollout), not one"),
        ("climdiff.data.store", "def f():\n    from climdiff.cli import main\n", "climdiff.cli (cli)"),
        ("climdiff.zarr_io", "import climdiff.data.store", "climdiff.data.store (data)"),
        ("climdiff.evaluate.sources", "from ..cli.common import Json", "climdiff.cli.common (cli), a later stage"),
        ("climdiff.models.edm", "from climdiff import bundle", "climdiff.bundle (bundle)"),
        ("climdiff.sampling.edm", "from climdiff.novel import x", "climdiff.novel, which has no stage"),
        ("climdiff.novel", "import os", "climdiff.novel has no stage"),
    ],
)
def test_the_checker_names_an_offending_import(module: str, source: str, offence: str) -> None:
    found = violations(module, source)
    assert len(found) == 1 and offence in found[0], found


def test_the_checker_allows_earlier_stages_and_its_own() -> None:
    source = "from climdiff.errors import ClimdiffError\nfrom climdiff.data.store import x\nfrom . import calendar\n"
    assert violations("climdiff.rollout.engine", source) == []
    assert violations("climdiff.cli", "from climdiff.cli import data", is_package=True) == []


def test_the_architecture_doc_states_the_same_order() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    assert " -> ".join(STAGES) in text
    for stage, allowed in MAY_IMPORT.items():
        listed = ", ".join(allowed) if allowed else "nothing"
        assert re.search(rf"\|\s*{stage}\s*\|\s*{listed}\s*\|", text), (
            f"stage {stage} may import {listed}: not in the doc"
        )
    for module, stage in STAGE_OF.items():
        assert re.search(rf"`{re.escape(module)}`[^\n|]*\|\s*{stage}\b", text), (
            f"{module} ({stage}) missing from the doc"
        )
