"""``tinygraph draw --model rnn|lstm|gru`` draws the textbook build by default; ``--fused``
draws what training runs, for every cell."""
import pytest

from tinygraph.cli import main

pytest.importorskip("tinygraph.models")

# what the textbook graph of each model must show (tensor names from the equations)
NAMES = {
    "rnn": ["x_t", "x_t W_xh", "h_{t-1} W_hh", "h_t"],
    "lstm": ["x_t", "x_t W_xi", "h_{t-1} W_hf", "x_t W_xg", "h_{t-1} W_ho", "f c_{t-1}", "i g", "c_t",
             "tanh(c_t)", "h_t"] + [f"<b>{g}</b>" for g in "ifgo"],
    "gru": ["x_t", "x_t W_xr", "h_{t-1} W_hz", "x_t W_xn", "(1-z) n", "z h_{t-1}", "h_t"] + [f"<b>{g}</b>" for g in "rzn"],
}
FUSED_SIGN = {"rnn": "[x 1]", "lstm": "lstm_cell", "gru": "gru_cell"}


@pytest.mark.parametrize("model", sorted(NAMES))
def test_default_is_the_textbook_graph_and_fused_is_what_training_runs(tmp_path, model):
    textbook, fused = tmp_path / "textbook.dot", tmp_path / "fused.dot"
    assert main(["draw", "--model", model, "--out", str(textbook)]) == 0
    assert main(["draw", "--model", model, "--out", str(fused), "--fused"]) == 0
    text, fused_text = textbook.read_text(encoding="utf-8"), fused.read_text(encoding="utf-8")
    for name in NAMES[model]:
        assert name in text, name
    for plumbing in ("reshape", "concat", "[x 1]", "[:, ", FUSED_SIGN[model]):
        assert plumbing not in text, plumbing
    assert FUSED_SIGN[model] in fused_text and "[x 1]" in fused_text  # inputs projected before the loop
    assert "x_t W_x" not in fused_text
