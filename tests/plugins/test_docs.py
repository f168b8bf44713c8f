"""docs/plugins/ holds the page generated for every built-in plugin."""

from pathlib import Path
from typing import Any

import pytest

from quiver.plugins.base import Plugin
from quiver.plugins.builtin import BUILT_IN
from quiver.plugins.docs import render

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins"


@pytest.mark.parametrize("plugin", BUILT_IN, ids=lambda p: p.name)
def test_each_built_in_plugin_has_its_generated_page(plugin: type[Plugin[Any]]) -> None:
    page = DOCS / f"{plugin.name}.md"
    assert page.read_text() == render(plugin), "run: python -m quiver.plugins.docs"
