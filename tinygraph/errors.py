"""Exception types. All derive from the built-in ones users already catch."""


class ShapeError(ValueError):
    """Operands whose shapes do not fit the operation."""


class TinygraphIndexError(IndexError, ValueError):
    """An index out of range or of the wrong kind (also a ValueError, per the error policy)."""


class ModifiedInPlaceError(RuntimeError):
    """A tensor whose values a VJP needs was modified after the forward pass used it."""


class BackwardTwiceError(RuntimeError):
    """``backward`` called again on a root whose gradients were already accumulated."""


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree."""


def shape_str(shape):
    return "(" + ",".join(str(s) for s in shape) + ")"
