"""Every Python example in README.md runs as written (in a scratch folder)."""
import pathlib
import re
import shutil

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.skipif(shutil.which("dot") is None, reason="the drawing example renders with Graphviz 'dot'")
def test_readme_examples_run_in_order(tmp_path, monkeypatch):
    pytest.importorskip("tinygraph.models")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for number, block in enumerate(BLOCKS):
        try:
            exec(compile(block, f"README.md python block {number}", "exec"), namespace)
        except Exception as exc:  # name the block that broke
            raise AssertionError(f"README python block {number} failed: {exc!r}\n{block}") from exc
    assert (tmp_path / "ckpt.npz").exists() and (tmp_path / "rnn.svg").exists()


def test_no_readme_code_passes_a_literal_ellipsis():
    """Blocks not run here (```py: PyTorch interop) still parse, and none hides an argument behind
    `...` that a reader would paste as is (tg.draw(x, ...) is a TypeError)."""
    import ast
    blocks = re.findall(r"```py(?:thon)?\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    for number, block in enumerate(blocks):
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                args = list(node.args) + [k.value for k in node.keywords]
                assert not any(isinstance(a, ast.Constant) and a.value is Ellipsis for a in args), (
                    f"README code block {number} passes ... to {ast.unparse(node.func)}: {ast.unparse(node)}")
