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
