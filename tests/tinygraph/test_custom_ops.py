"""The public way to define an op: subclass ``tg.Op``, ``@tg.register``, apply it."""
import warnings

import numpy as np
import pytest

import tinygraph as tg
from tinygraph.ops import OPS


@pytest.fixture
def clean_ops():
    before = dict(OPS)
    yield
    OPS.clear()
    OPS.update(before)


def _square_class():
    class Square(tg.Op):
        name = "test_square"

        def forward(self, x):
            return x * x

        def vjp(self, g, out, x):
            return (2 * x * g,)
    return Square


def test_a_custom_op_applies_records_and_differentiates(clean_ops):
    Square = tg.register(_square_class())
    x = tg.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True, name="x")
    for y in (Square.apply(x), tg.apply("test_square", x), tg.apply(Square, x)):
        assert y.op == "test_square" and y.parents == (x,)
        np.testing.assert_allclose(y.data, [1.0, 4.0, 9.0])
    assert tg.gradcheck(lambda x: Square.apply(x).sum(), [x])


def test_re_registering_the_same_class_replaces_it_with_a_warning(clean_ops):
    tg.register(_square_class())
    with pytest.warns(UserWarning, match="registered again"):
        Again = tg.register(_square_class())  # the same cell run again
    assert type(OPS["test_square"]) is Again


def test_a_clash_with_a_builtin_op_is_an_error(clean_ops):
    class MyTanh(tg.Op):
        name = "tanh"

    with pytest.raises(ValueError, match="'tanh' is already taken by a built-in op"):
        tg.register(MyTanh)
    assert type(OPS["tanh"]).__module__.startswith("tinygraph.")


def test_a_clash_between_two_different_user_classes_is_an_error(clean_ops):
    tg.register(_square_class())

    class Other(tg.Op):
        name = "test_square"

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="already taken"):
            tg.register(Other)


def test_bad_registrations_and_applications_are_clear(clean_ops):
    with pytest.raises(TypeError, match="subclass of tinygraph.Op"):
        tg.register(object)

    class Nameless(tg.Op):
        pass

    with pytest.raises(ValueError, match="must set a class attribute 'name'"):
        tg.register(Nameless)
    with pytest.raises(ValueError, match="not registered"):
        _square_class().apply(tg.tensor([1.0]))
    with pytest.raises(ValueError, match="no op named 'nope'"):
        tg.apply("nope", tg.tensor([1.0]))


def test_a_notebook_cell_run_again_in_main_replaces_the_op_with_its_new_code():
    """The cell as a student runs it twice in ``__main__``, fixing its VJP in between."""
    import subprocess
    import sys

    cell = '''
import warnings
import numpy as np
import tinygraph as tg

@tg.register
class Cube(tg.Op):
    name = "cube"
    def forward(self, x):
        return x ** 3
    def vjp(self, g, out, x):
        return (FACTOR * x ** 2 * g,)
'''.replace("FACTOR", "{factor}")
    script = (cell.format(factor=2) +  # the first version, with a wrong VJP
              "x = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)\n"
              "old = Cube.apply(x)\n"
              "with warnings.catch_warnings(record=True) as caught:\n"
              "    warnings.simplefilter('always')\n"
              "    exec(compile(" + repr(cell.format(factor=3)) + ", '<cell>', 'exec'))\n"  # the fixed cell, run again
              "print('warned:', [str(w.message) for w in caught])\n"
              "Cube.apply(x).sum().backward()\n"
              "print('grad:', x.grad.tolist(), 'checks:', tg.gradcheck(lambda x: tg.apply('cube', x).sum(), [x]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "registered again" in done.stdout and "__main__.Cube" in done.stdout
    assert "grad: [3.0, 12.0] checks: True" in done.stdout
