"""Module registration, traversal, naming, modes and state dicts (the base class itself)."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph.nn import Module, ModuleList, Parameter


class Cell(Module):
    def __init__(self):
        super().__init__()
        self.W_hh = Parameter(np.ones((2, 2)))
        self.b_h = Parameter(np.zeros(2))

    def forward(self, h):
        return (h @ self.W_hh + self.b_h).tanh()


class Net(Module):
    def __init__(self):
        super().__init__()
        self.cell = Cell()
        self.layers = ModuleList([Cell(), Cell()])
        self.scale = Parameter(np.array(2.0))
        self.not_a_param = np.ones(3)  # plain attributes are not registered

    def forward(self, h):
        for layer in [self.cell, *self.layers]:
            h = layer(h)
        return h * self.scale


def test_named_parameters_are_dotted_and_in_registration_order():
    names = [n for n, _ in Net().named_parameters()]
    assert names == ["scale", "cell.W_hh", "cell.b_h", "layers.0.W_hh", "layers.0.b_h", "layers.1.W_hh", "layers.1.b_h"]


def test_parameter_names_default_to_the_attribute():
    cell = Cell()
    assert cell.W_hh.name == "W_hh" and cell.W_hh.requires_grad and cell.W_hh.instance is None


def test_shared_parameters_are_listed_once():
    net = Net()
    net.layers[1].W_hh = net.cell.W_hh
    assert len(net.parameters()) == 6
    assert net.num_parameters() == sum(p.size for p in net.parameters())


def test_calling_calls_forward_and_zero_grad_clears():
    net = Net()
    out = net(tg.tensor(np.ones((1, 2))))
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_reassigning_and_deleting_attributes_updates_the_registry():
    cell = Cell()
    cell.W_hh = Parameter(np.zeros((3, 3)))
    assert dict(cell.named_parameters())["W_hh"].shape == (3, 3)
    cell.W_hh = None  # replacing a parameter by a plain value unregisters it
    assert [n for n, _ in cell.named_parameters()] == ["b_h"]
    del cell.b_h
    assert cell.parameters() == []


def test_train_eval_propagates():
    net = Net()
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    assert len(net.children()) == 2 and len(net.modules()) == 5


def test_module_list_behaves_like_a_list():
    layers = ModuleList([Cell()]).append(Cell())
    assert len(layers) == 2 and isinstance(layers[0], Cell) and len(list(layers)) == 2
    assert isinstance(layers[1:], ModuleList) and len(layers[1:]) == 1
    with pytest.raises(TypeError, match="ModuleList.append: expected a Module, got int"):
        layers.append(3)


def test_forgetting_super_init_is_a_clear_error():
    class Broken(Module):
        def __init__(self):
            self.W = Parameter(np.ones(2))

    with pytest.raises(RuntimeError, match=r"Broken: call super\(\).__init__\(\)"):
        Broken()


def test_forward_must_be_defined():
    with pytest.raises(NotImplementedError, match="Module must define forward"):
        Module()(1)


def test_state_dict_copies_and_load_keeps_dtype_in_place():
    cell = Cell()
    state = cell.state_dict()
    state["W_hh"][...] = 7  # a copy: the model is unchanged
    assert cell.W_hh.data[0, 0] == 1
    before = cell.W_hh.data
    cell.load_state_dict({"W_hh": np.full((2, 2), 3, dtype=np.float32), "b_h": tg.tensor(np.ones(2))})
    assert cell.W_hh.data is before and cell.W_hh.dtype == np.float64 and cell.W_hh.data[0, 0] == 3


def test_load_state_dict_reports_every_problem_and_changes_nothing():
    cell = Cell()
    with pytest.raises(ValueError) as info:
        cell.load_state_dict({"W_hh": np.ones((3, 3)), "extra": np.ones(1)})
    msg = str(info.value)
    assert "missing keys: b_h" in msg and "unexpected keys: extra" in msg and "W_hh: shape (3,3)" in msg
    assert cell.W_hh.data[0, 0] == 1
    cell.load_state_dict({"W_hh": np.zeros((2, 2))}, strict=False)
    assert cell.W_hh.data.sum() == 0
    with pytest.raises(ValueError, match="b_h: dtype <U1 is not numeric"):
        cell.load_state_dict({"W_hh": np.zeros((2, 2)), "b_h": np.array(["a", "b"])})
    with pytest.raises(TypeError, match="expected a dict of arrays, got list"):
        cell.load_state_dict([1, 2])


def test_repr_shows_the_tree():
    text = repr(Net())
    assert "Net(" in text and "(cell): Cell(" in text and "(W_hh): Parameter(2, 2)" in text and "(layers): ModuleList(" in text
    assert "Parameter(shape=(2, 2)" in repr(Cell().W_hh)


def test_parameter_from_tensor_copies():
    t = tg.tensor(np.ones(2))
    p = Parameter(t)
    p.data[0] = 5
    assert t.data[0] == 1 and p.dtype == np.float64


def test_load_state_dict_names_a_value_that_is_not_an_array():
    layer = tg.nn.Linear(3, 2)
    with pytest.raises(ValueError, match="W: cannot be made into an array"):
        layer.load_state_dict({"W": [[1, 2], [3]], "b": np.ones(2)})


def test_non_strict_load_reports_what_did_not_match():
    layer = tg.nn.Linear(3, 2)
    result = layer.load_state_dict({"W": np.zeros((3, 2)), "extra": np.ones(1)}, strict=False)
    assert result.missing_keys == ["b"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(layer.W.data, 0)
    assert tuple(layer.load_state_dict(layer.state_dict())) == ([], [])
