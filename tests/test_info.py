"""`climdiff info` and `climdiff data info`: one header reader and one description per output kind, one rendering."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import zarr

from climdiff.assets import DEFAULT_MODEL, embedded_bundle
from climdiff.cli.info import DESCRIBE, HEADER_READERS, describe_output
from climdiff.errors import ClimdiffError
from climdiff.zarr_io import consolidate, update_header


@pytest.fixture(scope="module")
def outputs(learning_store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One path of each cheap kind, and two that are no climdiff output at all."""
    root = tmp_path_factory.mktemp("outputs")
    (root / "notes.txt").write_text("not ours")
    (root / "empty").mkdir()
    bundle = embedded_bundle(DEFAULT_MODEL)
    return {
        "bundle": bundle,
        "checkpoint": bundle / "idm.safetensors",
        "training-data": learning_store,
        "text": root / "notes.txt",
        "folder": root / "empty",
    }


def test_each_reader_recognises_only_its_own_kind(outputs: dict[str, Path]) -> None:
    for name, path in outputs.items():
        kinds = [h.kind for h in (read(path) for read in HEADER_READERS) if h is not None and h.kind in DESCRIBE]
        assert kinds == ([] if name in ("text", "folder") else [name]), (name, kinds)


def test_describe_output_follows_the_kind(outputs: dict[str, Path]) -> None:
    assert describe_output(outputs["bundle"])["kind"] == "bundle"
    assert describe_output(outputs["checkpoint"])["kind"] == "idm"
    assert describe_output(outputs["training-data"])["kind"] == "training-data"
    for name in ("text", "folder"):
        with pytest.raises(
            ClimdiffError, match="is not a climdiff store, checkpoint, training run, bundle or evaluation"
        ):
            describe_output(outputs[name])


def test_data_info_renders_as_info_does_and_flags_an_unfinished_store(
    cli, learning_store: Path, tmp_path: Path
) -> None:
    both = [cli(*command, learning_store) for command in (("info",), ("data", "info"))]
    assert all(r.exit_code == 0 for r in both) and both[0].stdout == both[1].stdout
    assert "INCOMPLETE" not in both[0].stdout
    unfinished = shutil.copytree(learning_store, tmp_path / "unfinished.zarr")
    group = zarr.open_group(str(unfinished), mode="r+")
    update_header(group, complete=False)
    consolidate(unfinished)
    table = cli("info", unfinished)
    assert table.exit_code == 0 and "INCOMPLETE" in table.stdout
