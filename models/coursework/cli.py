"""``tinygraph grade PATH``: grade a submitted notebook or a folder of them (registered through the
``tinygraph.commands`` entry-point group)."""
from __future__ import annotations

import os
import sys

from tinygraph.cli_args import positive_float


def add_parser(subparsers):
    p = subparsers.add_parser(
        "grade", help="grade coursework notebooks: a CSV grade book and one feedback file per student",
        description="Run each submitted notebook in a fresh Jupyter kernel with a time limit, grade its "
                    "exercises (and the teacher's hidden checks), write OUT/gradebook.csv and "
                    "OUT/feedback/<student>.txt. Exit code 0 only if every exercise of every notebook passes.")
    p.add_argument("path", help="a notebook, or a folder of submitted notebooks (one subfolder per student, "
                                "or one notebook per student named after them)")
    p.add_argument("--out", default="grades", help="folder for gradebook.csv and feedback/ (default: grades)")
    p.add_argument("--hidden", default=None, help="a Python file of hidden checks (functions check_<name>(ns))")
    p.add_argument("--timeout", type=positive_float, default=120.0, help="seconds per notebook (default: 120)")
    p.set_defaults(func=run)


def run(args):
    if args.hidden is not None and not os.path.isfile(args.hidden):
        # the teacher's mistake: stop before any student is graded (and failed for it)
        print(f"tinygraph grade: --hidden {args.hidden}: no such file of hidden checks", file=sys.stderr)
        return 2
    try:
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError:
        print("tinygraph grade needs Jupyter tooling: pip install 'tinygraph[notebooks]'", file=sys.stderr)
        return 2
    try:  # before grading anyone: a grade book that cannot be written is found out now, not at the end
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        print(f"tinygraph grade: cannot write to --out {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    from .grade import all_passed, grade_path

    def progress(student, path, feedback):
        passed = sum(f.passed for f in feedback)
        print(f"{student}: {path.name}: {passed}/{len(feedback)} exercises passed")
        for f in feedback:
            if not f.passed:
                print(f"    {f}")

    try:
        graded = grade_path(args.path, args.out, hidden=args.hidden, timeout=args.timeout, on_notebook=progress)
    except FileNotFoundError as exc:
        print(f"tinygraph grade: {exc}", file=sys.stderr)
        return 2
    print(f"grade book: {args.out}/gradebook.csv; feedback: {args.out}/feedback/")
    return 0 if all_passed(graded) else 1
