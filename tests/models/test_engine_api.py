"""The models use only the engine's public API (docs/design.md): no private Tensor
attributes such as ``_fn``, ``_attrs`` or ``_retain``; a model is something a user
could have written."""
import ast
import pathlib

MODELS = pathlib.Path(__file__).resolve().parents[2] / "models"
PRIVATE_TENSOR_ATTRIBUTES = {"_fn", "_attrs", "_retain", "_seq", "_leaf", "_new_tensor"}


def private_uses(source):
    return sorted({node.attr for node in ast.walk(ast.parse(source))
                   if isinstance(node, ast.Attribute) and node.attr in PRIVATE_TENSOR_ATTRIBUTES})


def test_the_checker_sees_private_attribute_access():
    assert private_uses("node._fn.vjp(g)\nn._retain, n.grad = r, g") == ["_fn", "_retain"]
    assert private_uses("node.op_object.vjp(g, **node.attrs)") == []


def test_models_use_no_private_tensor_attributes():
    offenders = {path.name: private_uses(path.read_text(encoding="utf-8")) for path in MODELS.glob("*.py")}
    assert {name: uses for name, uses in offenders.items() if uses} == {}
