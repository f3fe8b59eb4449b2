"""The dependency direction of DESIGN.md: ``tinygraph`` never imports ``models``."""
import ast
import pathlib

import tinygraph

PACKAGE = pathlib.Path(tinygraph.__file__).parent


def imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_tinygraph_never_imports_models():
    offenders = {str(path.relative_to(PACKAGE)): name
                 for path in PACKAGE.rglob("*.py") for name in imported_modules(path)
                 if name == "models" or name.startswith("models.")}
    assert not offenders


def test_the_draw_command_finds_the_models_through_its_entry_point():
    from tinygraph.drawing.cli import model_graph_builder

    build = model_graph_builder()
    assert build.__module__ == "tinygraph.models.drawing"
    assert tinygraph.Graph(build("lstm", 2)).instances() == {"LSTMCell": 2}
