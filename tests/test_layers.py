"""The import contracts of pyproject.toml ([tool.importlinter]) hold: layers run one way."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(120)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter run on the ``quiver`` package found first from ``root``."""
    script = (
        "import sys\n"
        "from importlinter.cli import lint_imports\n"
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )


def test_every_import_contract_is_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "statement", "broken"),
    [
        ("plugins/acl.py", "import quiver.proxy.routing", "plugins never import the proxy"),
        ("proxy/snapshot.py", "import quiver.plugins.key_auth", "imports only the plugin contract"),
        ("config/loader.py", "import quiver.plugins.base", "layers run one way"),
        ("plugins/chain.py", "import quiver.plugins.cors", "contract imports no plugin"),
    ],
)
def test_an_import_against_the_layers_is_caught(
    tmp_path: Path, module: str, statement: str, broken: str
) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "quiver", tmp_path / "quiver", ignore=shutil.ignore_patterns("*.pyc"))
    path = tmp_path / "quiver" / module
    path.write_text(path.read_text() + f"\n{statement}  # against the layers\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{broken}" in result.stdout and "BROKEN" in result.stdout
    assert statement.split()[-1] in result.stdout  # the report names the imported module
