"""The installed layout: ``models/`` installs as ``tinygraph.models``, never as a
top-level ``models`` that a student's own ``models.py`` would shadow (or be shadowed by)."""
import configparser
import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_models_is_a_subpackage_of_tinygraph(tmp_path):
    from tinygraph import models

    assert models.__name__ == "tinygraph.models"
    # Outside the repository (whose root python -m pytest puts on sys.path) no
    # top-level "models" may be importable: the install must not provide one.
    script = "import importlib.util; print(importlib.util.find_spec('models'))"
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert run.stdout.strip() == "None", run.stdout + run.stderr


def test_a_students_models_py_breaks_nothing(tmp_path):
    (tmp_path / "models.py").write_text("MY_MODEL = 'a student model'\n")
    script = textwrap.dedent("""
        import models                      # the student's own file
        from tinygraph import models as tgm
        assert models.MY_MODEL == 'a student model'
        out, (h, c) = tgm.LSTM(1, 4)(__import__('numpy').zeros((3, 2, 1)))
        assert out.shape == (3, 2, 4)
        print('ok')
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"


def test_every_package_folder_is_listed_in_setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    mapping = dict(line.split("=") for line in cfg["options"]["package_dir"].strip().splitlines())
    mapping = {k.strip(): v.strip() for k, v in mapping.items()}
    found = set()
    for init in (ROOT / "tinygraph").rglob("__init__.py"):
        found.add(".".join(init.parent.relative_to(ROOT).parts))
    for init in (ROOT / mapping["tinygraph.models"]).rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT / mapping["tinygraph.models"]).parts
        found.add(".".join(("tinygraph", "models") + rel))
    assert found == listed
