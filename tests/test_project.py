"""Project-level promises: CI runs the README's test command; the CLI answers --help/--version."""

from __future__ import annotations

import re
from pathlib import Path

from climdiff import __version__

ROOT = Path(__file__).parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    install_and_run, install_and_test = _bash_blocks(setup)[:2]
    assert "pytest" in install_and_test and "climdiff " in install_and_run
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert install_and_test in ci_lines


def test_version_and_help(cli) -> None:
    version = cli("--version")
    assert version.exit_code == 0 and __version__ in version.stdout
    helped = cli("data", "turbulence", "--help")
    assert helped.exit_code == 0 and "--frames" in helped.stdout and "--overwrite" in helped.stdout
