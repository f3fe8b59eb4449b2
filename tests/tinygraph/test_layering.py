"""The layering rule of docs/design.md, in the project's own words:

    "models imports tinygraph; tinygraph never imports models."

The engine finds what the models add (the draw builder, CLI subcommands) through
entry points, never through an import. Since ``models/`` installs as the
subpackage ``tinygraph.models``, every spelling of that import counts:
``import models``, ``from tinygraph import models``, ``import tinygraph.models``,
``from tinygraph.models.x import y`` and relative ``from .. import models``.
"""
import ast
import pathlib

import tinygraph

PACKAGE = pathlib.Path(tinygraph.__file__).parent
DESIGN = pathlib.Path(__file__).resolve().parents[2] / "docs" / "design.md"
RULE = "`models` imports `tinygraph`; `tinygraph` never imports `models`"


def _is_models(module):
    return module in ("models", "tinygraph.models") or module.startswith(("models.", "tinygraph.models."))


def models_imports(source, package_parts=("tinygraph",)):
    """The import statements in ``source`` (a module inside ``package_parts``) that import the models."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_models(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = list(package_parts[: len(package_parts) - node.level + 1])
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if _is_models(module):
                found.append(module)
            found += [f"{module}.{alias.name}" for alias in node.names if _is_models(f"{module}.{alias.name}")]
    return found


def test_the_rule_is_written_in_the_design_document():
    assert RULE in " ".join(DESIGN.read_text(encoding="utf-8").split())


def test_the_checker_sees_every_spelling_of_the_import():
    for source in ["import models", "import models.bptt", "from tinygraph import models",
                   "import tinygraph.models", "from tinygraph.models.bptt import train_step",
                   "from tinygraph.models import LSTM"]:
        assert models_imports(source), source
    assert models_imports("from .. import models", ("tinygraph", "drawing"))
    assert models_imports("from . import models", ("tinygraph",))
    for source in ["import numpy", "from tinygraph import nn", "from . import modelsx", "from .drawing import models_view"]:
        assert not models_imports(source, ("tinygraph",)), source


def test_tinygraph_never_imports_models():
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("tinygraph",) + path.relative_to(PACKAGE).parent.parts
        found = models_imports(path.read_text(encoding="utf-8"), parts)
        if found:
            offenders[str(path.relative_to(PACKAGE))] = found
    assert not offenders


def test_the_draw_command_finds_the_models_through_its_entry_point():
    from tinygraph.drawing.cli import model_graph_builder

    build = model_graph_builder()
    assert build.__module__ == "tinygraph.models.drawing"
    assert tinygraph.Graph(build("lstm", 2)).instances() == {"LSTMCell": 2}
