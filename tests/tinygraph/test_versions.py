"""In-place modification after use, backward twice, and the aliasing rules (docs/reliability.md)."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph.errors import BackwardTwiceError, ModifiedInPlaceError


def _lin(seed=0):
    rng = np.random.default_rng(seed)
    W = tg.nn.Parameter(rng.normal(size=(3, 2)), name="W")
    x = tg.tensor(rng.normal(size=(4, 3)), name="x")
    return W, x


def test_optimizer_step_between_forward_and_backward_raises_naming_the_tensor():
    W, x = _lin()
    loss = ((x @ W).tanh() ** 2).sum()
    W.grad = np.ones(W.shape)
    tg.optim.SGD([W], lr=0.1).step()          # modifies W.data in place
    with pytest.raises(ModifiedInPlaceError, match=r"'W'.*matmul"):
        loss.backward()


def test_assigning_data_after_use_raises():
    W, x = _lin()
    y = (x @ W).sum()
    W.data = W.data * 2
    with pytest.raises(ModifiedInPlaceError, match="'W'"):
        y.backward()


def test_augmented_assignment_on_data_is_seen():
    W, x = _lin()
    y = (x @ W).sum()
    W.data += 1.0
    with pytest.raises(ModifiedInPlaceError):
        y.backward()


def test_modifying_an_input_the_vjp_does_not_read_is_fine():
    # d(a + b)/da does not depend on b's value (PyTorch agrees)
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0, 4.0], requires_grad=True)
    y = (a + b).sum()
    b.data = b.data + 10
    y.backward()
    np.testing.assert_array_equal(a.grad, [1, 1])


def test_modifying_through_a_view_is_caught():
    x = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="x")
    row = x[0]
    y = (row * row).sum()          # mul reads row, a view of x
    x.data += 1                    # changes row's values too
    with pytest.raises(ModifiedInPlaceError):
        y.backward()


def test_modified_output_used_by_its_own_vjp_is_caught():
    x = tg.tensor([0.5, 1.0], requires_grad=True)
    e = x.exp()                    # exp's vjp reads its output
    loss = e.sum()
    e.data = np.zeros(2)
    with pytest.raises(ModifiedInPlaceError, match="exp"):
        loss.backward()


def test_training_loop_order_is_fine():
    W, x = _lin()
    opt = tg.optim.SGD([W], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        loss = ((x @ W) ** 2).mean()
        loss.backward()
        opt.step()


def test_backward_twice_raises_unless_retain_graph():
    W, x = _lin()
    loss = (x @ W).sum()
    loss.backward()
    once = W.grad.copy()
    with pytest.raises(BackwardTwiceError, match="already back-propagated"):
        loss.backward()
    np.testing.assert_array_equal(W.grad, once)   # nothing was added
    W.grad = None
    loss2 = (x @ W).sum()
    loss2.backward(retain_graph=True)
    loss2.backward()
    np.testing.assert_allclose(W.grad, 2 * once)


def test_backward_from_a_new_root_sharing_the_graph_is_allowed():
    W, x = _lin()
    h = x @ W
    (h.sum()).backward()
    (h * 2).sum().backward()
    np.testing.assert_allclose(W.grad, 3 * x.data.sum(axis=0)[:, None] * np.ones((1, 2)))


# -- aliasing rules -----------------------------------------------------------------

def test_tensor_of_an_array_copies():
    a = np.zeros(3)
    t = tg.tensor(a)
    a[0] = 5
    assert t.data[0] == 0
    t2 = tg.tensor(t)
    t.data[1] = 7
    assert t2.data[1] == 0
    # a view of a float array too
    base = np.zeros((2, 3))
    v = tg.tensor(base[0])
    base[0, 0] = 1
    assert v.data[0] == 0


def test_Tensor_constructor_and_detach_share():
    a = np.zeros(3)
    t = tg.Tensor(a)
    assert t.data is a
    assert t.detach().data is t.data


def test_stack_of_a_tensors_rows_is_a_fresh_writeable_array():
    x = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    s = tg.stack([x[0], x[1]])
    assert s.data.flags.writeable
    assert not np.shares_memory(s.data, x.data)
    np.testing.assert_array_equal(s.data, x.data)


def test_requires_grad_must_be_a_bool():
    with pytest.raises(TypeError, match="requires_grad"):
        tg.tensor([1.0], requires_grad="no")
    with pytest.raises(TypeError, match="requires_grad"):
        tg.Tensor(np.zeros(1), requires_grad=None)
    assert tg.tensor([1.0], requires_grad=np.True_).requires_grad is True


def test_float128_is_refused():
    if not hasattr(np, "float128"):
        pytest.skip("no float128 on this platform")
    with pytest.raises(TypeError, match="float128"):
        tg.tensor(np.zeros(2, dtype=np.float128))
    with pytest.raises(TypeError, match="float128"):
        tg.tensor(np.float128(1))


@pytest.mark.parametrize("preset, error, match", [
    (np.zeros(1), ValueError, r"shape \(1\)"),
    (np.zeros((2, 3), dtype=np.int64), TypeError, "int64"),
    ([0.0] * 6, TypeError, "list"),
])
def test_a_bad_preset_grad_is_a_clear_error(preset, error, match):
    x = tg.tensor(np.ones((2, 3)), requires_grad=True, name="x")
    x.grad = preset
    with pytest.raises(error, match=match):
        (x * 2).sum().backward()


def test_huge_python_numbers_name_the_op():
    t = tg.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match=r"add.*too large"):
        t + 10**400
    with pytest.raises(ValueError, match=r"mul.*too large.*float32"):
        t * 1e300
    assert np.isinf((t * float("inf")).data).all()   # an explicit inf stays allowed
    assert (tg.tensor([1.0], dtype=np.float64) + 1e300).data[0] == 1e300


def test_a_custom_op_without_saves_is_checked_on_every_input():
    class Cube(tg.Op):
        name = "cube_for_version_test"

        def forward(self, x):
            return x ** 3

        def vjp(self, g, out, x):
            return (3 * x * x * g,)

    op = Cube()
    x = tg.tensor([1.0, 2.0], requires_grad=True, name="x")
    y = tg.apply(op, x).sum()
    x.data = x.data + 1
    with pytest.raises(ModifiedInPlaceError, match="'x'.*cube_for_version_test"):
        y.backward()
