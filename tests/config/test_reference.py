"""docs/configuration.md carries the reference generated from the models."""

from pathlib import Path

from quiver.config.reference import BEGIN, END, render_reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_doc_embeds_the_generated_reference() -> None:
    text = DOC.read_text()
    embedded = text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    assert embedded == render_reference(), "run: python -m quiver.config.reference"


def test_reference_describes_every_route_key() -> None:
    reference = render_reference()
    for key in ("paths", "methods", "hosts", "headers", "strip_path", "rewrite", "priority"):
        assert f"| `{key}` |" in reference
