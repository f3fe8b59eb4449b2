"""``tinygraph draw`` on the built-in models."""
import argparse
import os
import shutil
import time

import pytest

import tinygraph as tg

from tinygraph.cli import main
from tinygraph.drawing.cli import add_draw_parser

pytest.importorskip("tinygraph.models")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")


def test_add_draw_parser_registers_the_subcommand():
    parser = argparse.ArgumentParser()
    add_draw_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["draw", "--model", "lstm", "--steps", "4", "--out", "g.svg", "--folded", "--grads"])
    assert (args.model, args.steps, args.out, args.folded, args.grads, args.compact) == ("lstm", 4, "g.svg",
                                                                                         True, True, False)
    assert callable(args.func)


@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("flags", [[], ["--folded"], ["--grads"], ["--compact"], ["--folded", "--grads"]])
def test_draw_writes_dot_source(tmp_path, capsys, model, flags):
    out = tmp_path / "g.dot"
    assert main(["draw", "--model", model, "--steps", "3", "--out", str(out)] + flags) == 0
    text = out.read_text(encoding="utf-8")
    cell = {"rnn": "RNNCell", "lstm": "LSTMCell", "gru": "GRUCell"}[model]
    if "--compact" in flags:
        assert f"{cell} t=2" in text
    elif "--folded" in flags:
        assert f"cluster_{cell} " in text and "3 instances" in text
    else:
        assert all(f"cluster_{cell}_{t} " in text for t in range(3))
    assert ("gradient norm" in text) == ("--grads" in flags)
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.parametrize("model, gate_op, fused_op", [("lstm", "sigmoid", "lstm_cell"), ("gru", "sigmoid", "gru_cell")])
def test_draw_shows_the_gates_unless_fused(tmp_path, model, gate_op, fused_op):
    gates, fused = tmp_path / "gates.dot", tmp_path / "fused.dot"
    assert main(["draw", "--model", model, "--out", str(gates)]) == 0
    assert main(["draw", "--model", model, "--out", str(fused), "--fused"]) == 0
    gates_text, fused_text = gates.read_text(encoding="utf-8"), fused.read_text(encoding="utf-8")
    assert gate_op in gates_text and fused_op not in gates_text
    assert fused_op in fused_text and gate_op not in fused_text


@needs_dot
def test_draw_svg(tmp_path):
    out = tmp_path / "graph.svg"
    assert main(["draw", "--model", "rnn", "--steps", "3", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"<?xml")


def test_without_dot_prints_install_hint(tmp_path, capsys, monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "dot" else real_which(name, *a, **k))
    out = tmp_path / "graph.png"
    assert main(["draw", "--model", "rnn", "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "apt-get install graphviz" in printed and "brew install graphviz" in printed
    assert os.listdir(tmp_path) == ["graph.dot"]


def test_bad_extension(tmp_path, capsys):
    assert main(["draw", "--model", "rnn", "--out", str(tmp_path / "g.jpg")]) == 2
    assert "use .svg, .png, .pdf, .dot or .html" in capsys.readouterr().out
    assert os.listdir(tmp_path) == []


def test_too_many_nodes_is_reported(tmp_path, capsys):
    assert main(["draw", "--model", "lstm", "--steps", "3", "--max-nodes", "10", "--out", str(tmp_path / "g.dot")]) == 2
    assert "compact=True" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["draw", "--model", "transformer", "--out", "g.svg"],
                                  ["draw", "--steps", "0", "--out", "g.svg"],
                                  ["draw", "--model", "rnn"]])
def test_bad_arguments_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_draw_into_a_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["draw", "--model", "rnn", "--out", str(tmp_path / "missing" / "g.dot")]) == 2
    assert "does not exist" in capsys.readouterr().out


def test_animate_flag_is_parsed():
    parser = argparse.ArgumentParser()
    add_draw_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["draw", "--animate", "--compact", "--out", "b.gif"])
    assert args.animate and args.compact and not parser.parse_args(["draw", "--out", "g.svg"]).animate


@needs_dot
@pytest.mark.parametrize("model, flags", [("rnn", []), ("lstm", ["--compact"]), ("gru", ["--fused"])])
def test_animate_writes_a_gif(tmp_path, capsys, model, flags):
    Image = pytest.importorskip("PIL.Image")
    from tinygraph.models.drawing import build_model_graph
    from tinygraph.drawing import backward_frames

    out = tmp_path / "backward.gif"
    assert main(["draw", "--model", model, "--steps", "2", "--animate", "--out", str(out)] + flags) == 0
    expected = len(backward_frames(build_model_graph(model, 2, grads=True, fused="--fused" in flags),
                                   compact="--compact" in flags))
    with Image.open(out) as gif:
        assert gif.n_frames == expected
    assert f"wrote {out} ({expected} frames)" in capsys.readouterr().out


@needs_dot
def test_animate_into_a_folder_writes_svg_frames(tmp_path, capsys):
    out = str(tmp_path / "frames") + "/"
    assert main(["draw", "--model", "rnn", "--steps", "2", "--compact", "--animate", "--out", out]) == 0
    files = sorted(os.listdir(tmp_path / "frames"))
    assert files[0] == "frame_000.svg" and all(f.endswith(".svg") for f in files)
    assert f"wrote {len(files)} frames into {out}" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--folded", "--out", "b.gif"], "--folded is not supported"),
    (["--out", "b.svg"], "must be a .gif file"),
    (["--out", "missing/b.gif"], "does not exist"),
])
def test_animate_refuses_bad_combinations(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["draw", "--animate"] + argv) == 2
    assert message in capsys.readouterr().out
    assert os.listdir(tmp_path) == []


def test_animate_without_dot_prints_install_hint(tmp_path, capsys, monkeypatch):
    pytest.importorskip("PIL")
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "dot" else real_which(name, *a, **k))
    assert main(["draw", "--animate", "--out", str(tmp_path / "b.gif")]) == 1
    assert "apt-get install graphviz" in capsys.readouterr().out
    assert os.listdir(tmp_path) == []


# -- refusing from the arguments, and clear messages instead of tracebacks ---------------------------

@pytest.mark.parametrize("model, steps", [("rnn", 100_000), ("lstm", 1_000_000)])
def test_huge_steps_are_refused_before_building(tmp_path, capsys, model, steps):
    """Before the fix, --steps 100000 built the whole graph (13 s, 485 MB) before refusing."""
    start = time.monotonic()
    assert main(["draw", "--model", model, "--steps", str(steps), "--out", str(tmp_path / "g.dot")]) == 2
    assert time.monotonic() - start < 10  # a one- and a two-step graph are built, nothing more
    printed = capsys.readouterr().out
    assert f"--steps {steps}" in printed and "fewer steps" in printed
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("flags", [[], ["--compact"], ["--folded"], ["--folded", "--compact"]])
def test_max_nodes_is_checked_from_the_arguments_exactly(tmp_path, capsys, flags):
    from tinygraph.models.drawing import build_model_graph
    from tinygraph.drawing import dot

    steps = 5
    view = dot._view_of(tg.Graph(build_model_graph("lstm", steps)), "--folded" in flags, "--compact" in flags,
                        None)
    argv = ["draw", "--model", "lstm", "--steps", str(steps), "--out", str(tmp_path / "g.dot")] + flags
    assert main(argv + ["--max-nodes", str(len(view))]) == 0
    capsys.readouterr()
    assert main(argv + ["--max-nodes", str(len(view) - 1)]) == 2
    assert "estimated from --steps 5 before building" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--seed", "-1"], "non-negative integer"),
    (["--seed", "x"], "non-negative integer"),
    (["--hidden-size", "100000000"], "too large for a drawing"),
    (["--batch", "10000000"], "too large for a drawing"),
    (["--input-size", "0"], "positive integer"),
    (["--max-nodes", "-5"], "non-negative integer"),
])
def test_bad_numbers_are_usage_errors_not_tracebacks(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["draw", "--out", "g.dot"] + argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage" in err and message in err and "Traceback" not in err


def test_sizes_that_would_need_gigabytes_are_refused(tmp_path, capsys):
    argv = ["draw", "--hidden-size", "4096", "--batch", "4096", "--steps", "3", "--out", str(tmp_path / "g.dot")]
    assert main(argv) == 2
    assert "MiB of values" in capsys.readouterr().out
    assert os.listdir(tmp_path) == []


def test_out_pointing_at_a_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "pictures.svg").mkdir()
    for out in (tmp_path, tmp_path / "pictures.svg"):
        assert main(["draw", "--out", str(out)]) == 2
        assert "it is a folder" in capsys.readouterr().out


def test_unwritable_folder_is_a_clear_error(tmp_path, capsys, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **k: False if str(path) == str(tmp_path) else
                        real_access(path, mode, **k))
    assert main(["draw", "--out", str(tmp_path / "g.svg")]) == 2
    assert "is not writable" in capsys.readouterr().out


def test_write_failure_is_a_message(tmp_path, capsys, monkeypatch):
    """Whatever the file system refuses (permission, read-only, disk full) is reported in its own words."""
    from tinygraph.drawing import output

    def refuse(path, data):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(output, "_write_atomic", refuse)
    assert main(["draw", "--out", str(tmp_path / "g.dot")]) == 1
    printed = capsys.readouterr().out
    assert "cannot write" in printed and "Permission denied" in printed


def test_read_only_system_folder(capsys):
    folder = "/sys"
    try:
        open(os.path.join(folder, "tinygraph-probe"), "w").close()
    except OSError:
        pass
    else:  # pragma: no cover
        pytest.skip("/sys is writable here")
    status = main(["draw", "--out", os.path.join(folder, "g.dot")])
    assert status in (1, 2) and "cannot write" in capsys.readouterr().out


def test_dot_failing_is_a_message(tmp_path, capsys, monkeypatch):
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Error: out of memory' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: str(fake) if name == "dot" else None)
    assert main(["draw", "--out", str(tmp_path / "g.svg")]) == 1
    printed = capsys.readouterr().out
    assert "Graphviz 'dot' failed" in printed and "out of memory" in printed
    assert not (tmp_path / "g.svg").exists()
