"""Node labels and looks: what each kind of box says and how it is painted."""
from __future__ import annotations

import numpy as np

from ..ops import OPS
from .escape import escape_dot
from .view import BLOCK, CONST, INPUT, OP, PARAM

FONT = "Helvetica"
INK = "#333333"
MUTED = "#666666"

# Fill and border of each kind when gradients are not shown.
FILLS = {PARAM: "#fde3c4", INPUT: "#d7e6f5", CONST: "#ffffff", OP: "#ffffff", BLOCK: "#eef1f5"}
BORDERS = {PARAM: "#c77c2a", INPUT: "#3f73ad", CONST: "#999999", OP: "#555555", BLOCK: "#6b7785"}
SHAPES = {PARAM: "box", INPUT: "box", CONST: "plaintext", OP: "ellipse", BLOCK: "box"}
ROOT_BORDER = "#b2182b"
STATE_COLOR = "#1f5fa8"  # edges that carry the recurrent state


def shape_text(shape):
    if not shape:
        return "scalar"
    return "(" + ", ".join(str(s) for s in shape) + ")"


def op_text(t):
    """The op as a short symbol (from ``OPS``), with the attributes that change its meaning."""
    fn = OPS.get(t.op)
    text = (fn.symbol if fn is not None and fn.symbol else t.op) or "?"
    attrs = t.attrs
    if t.op == "index":
        text = "[" + _index_text(attrs.get("index")) + "]"
    elif t.op in ("sum", "mean", "max") and attrs.get("axis") is not None:
        text += f" axis={_axis_text(attrs['axis'])}"
    elif t.op in ("concat", "stack"):
        text += f" axis={attrs.get('axis')}"
    return text


def folded_op_text(tensors):
    """``op_text`` of the copies a folded node stands for: per-step indices ``xs[0]``,
    ``xs[1]``, ... read ``[t]`` (``[·]`` when the copies differ otherwise)."""
    texts = {op_text(t) for t in tensors}
    if len(texts) == 1:
        return texts.pop()
    if tensors[0].op == "index":
        ints = [t.attrs.get("index") for t in tensors]
        return "[t]" if all(isinstance(i, (int, np.integer)) for i in ints) else "[·]"
    return op_text(tensors[0]) + " …"


def _axis_text(axis):
    return str(axis[0]) if isinstance(axis, tuple) and len(axis) == 1 else str(axis)


def _index_text(index):
    items = index if isinstance(index, tuple) else (index,)
    parts = []
    for item in items:
        if isinstance(item, slice):
            a = "" if item.start is None else str(item.start)
            b = "" if item.stop is None else str(item.stop)
            parts.append(f"{a}:{b}" + ("" if item.step is None else f":{item.step}"))
        elif item is Ellipsis:
            parts.append("...")
        elif item is None:
            parts.append("None")
        elif isinstance(item, (np.ndarray, list)):
            parts.append("array")
        else:
            parts.append(str(item))
    return ", ".join(parts)


def constant_text(t):
    v = float(t.data.reshape(()))
    return f"{v:g}"


def node_label(node, grad_text=None, ink=INK, muted=MUTED, show_dtype=True, grad_value=None):
    """An HTML-like label: a bold title line and a small line of details.

    ``grad_value``, a pair ``(text, colour)``, is appended to the gradient line
    in its own colour (the animation draws a value not computed yet in the
    fill colour, so that the label keeps its size).
    """
    t = node.tensor
    if node.kind == BLOCK:
        lines = [f"<b>{_e(node.title)}</b>", _small(node.detail, muted)]
    elif node.kind == CONST:
        return f"<{_small(_e(constant_text(t)), muted)}>"
    else:
        if node.kind == OP:
            op = folded_op_text(node.tensors) if len(node.tensors) > 1 else op_text(t)
            title = t.name if t.name else op
            detail = (op + " · ") if t.name else ""
        else:
            title = t.name or ("parameter" if node.kind == PARAM else "input")
            detail = ""
        detail += shape_text(t.shape) + (f" {t.dtype}" if show_dtype else "")
        if node.count > 1 and node.group is None and node.kind == OP:
            detail += f" ×{node.count}"
        lines = [f"<b>{_e(title)}</b>", _small(_e(detail), muted)]
    if grad_text is not None:
        line = _small(_e(grad_text), muted)
        if grad_value is not None:
            line += _small(_e(grad_value[0]), grad_value[1])
        lines.append(line)
    return "<" + "<br/>".join(lines) + ">"


def _small(text, color):
    return f'<font point-size="8" color="{color}">{text}</font>'


def _e(text):
    return escape_dot(text)  # every user string in a label goes through the one escaping module


def key_html(kinds, has_state, folded, has_initial=False):
    """A one-row HTML-like table explaining the node kinds and edge colours present."""
    names = [(PARAM, "parameter"), (INPUT, "input / leaf"), (OP, "op result"), (BLOCK, "template instance")]
    cells = []
    for kind, text in names:
        if kind in kinds:
            cells.append(f'<td bgcolor="{FILLS[kind]}" color="{BORDERS[kind]}" border="1" width="14" height="10">'
                         f'</td><td align="left"><font point-size="9">{text}</font></td>')
    cells.append(f'<td color="{ROOT_BORDER}" border="2" width="14" height="10"></td>'
                 f'<td align="left"><font point-size="9">root (loss)</font></td>')
    if has_state:
        text = "state, drawn back into the copy (t-1)" if folded else "state passed to the next step"
        cells.append(f'<td bgcolor="{STATE_COLOR}" width="18" height="3" fixedsize="true"></td>'
                     f'<td align="left"><font point-size="9">{text}</font></td>')
    if has_initial:
        cells.append(f'<td align="left"><font point-size="9" color="{STATE_COLOR}">- - -</font></td>'
                     f'<td align="left"><font point-size="9">initial state (step 0)</font></td>')
    return ('<table border="0" cellborder="0" cellspacing="3" cellpadding="1"><tr>'
            + "".join(cells) + "</tr></table>")
