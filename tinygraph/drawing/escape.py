"""The one place where user strings (tensor names, template names, model names,
titles) are made safe for a drawing.

Every text that a user can choose reaches Graphviz as the text of an
*HTML-like* label (``label=<...>``), never as a plain quoted label: plain
labels give meaning to backslash sequences (``\\N``, ``\\l``, a trailing
``\\`` that eats the closing quote) and the ``graphviz`` package passes a
string that starts with ``<`` and ends with ``>`` (``<eos>``, or an injected
``<<table>...href="javascript:...">>``) through as HTML. Escaped text in an
HTML-like label means exactly its characters, so ``<eos>`` is drawn as
``<eos>`` and no name can add markup, links or attributes.

``escape_html`` is also what an HTML page (``tinygraph.drawing.html``) uses
for the same strings, so a name is made safe the same way in every view;
``escape_dot`` adds what Graphviz alone needs (doubled backslashes).
"""
from __future__ import annotations

import re

# C0 control characters (NUL makes ``dot`` fail; the others have no place in a label) and DEL
# are shown as their visible Unicode "control pictures" (U+2400 + code, U+2421 for DEL).
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_REPLACE = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_SPECIAL = re.compile("[&<>\"']")


def _visible_control(match):
    code = ord(match.group(0))
    return "\u2421" if code == 0x7F else chr(0x2400 + code)


def escape_html(text):
    """``text`` (any object, made a ``str``) as safe HTML text and attribute value.

    Escapes ``& < > " '`` as entities (decimal ones only, which Graphviz and
    every browser read) and replaces control characters, newlines included,
    by visible symbols (``\\x00`` becomes ``␀``), so the result is one line of
    plain text with no markup in it: safe inside an element, inside a quoted
    attribute, and inside a Graphviz HTML-like label.
    """
    text = str(text)
    text = _SPECIAL.sub(lambda m: _REPLACE[m.group(0)], text)
    return _CONTROL.sub(_visible_control, text)


# Characters with no meaning inside a quoted DOT string (no backslash, quote, angle bracket or control).
_PLAIN = re.compile(r"[\w .,:;=()\[\]{}#/+*!?@%$~^|×…·-]*")


def escape_dot(text):
    """``escape_html(text)`` for the text of a Graphviz HTML-like label.

    Graphviz expands ``\\G``, ``\\N``, ``\\E``, ``\\T``, ``\\H`` (graph, node, edge
    names) even inside HTML-like labels and reads ``\\\\`` as one backslash, so every
    backslash is doubled: a name ``a\\G`` is drawn as ``a\\G``, not as ``a`` + the graph's name.
    """
    return escape_html(text).replace("\\", "\\\\")


def dot_label(text):
    """A Graphviz ``label`` value that shows ``text`` literally.

    Plain text of harmless characters (letters, digits, spaces and common
    punctuation) is returned as is (``graphviz`` quotes it); anything else
    becomes an HTML-like label ``<`` + ``escape_dot(text)`` + ``>``.
    """
    text = str(text)
    if _PLAIN.fullmatch(text):
        return text
    return "<" + escape_dot(text) + ">"
