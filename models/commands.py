"""``tinygraph train``, ``tinygraph sample`` and ``tinygraph tasks`` (registered through the
``tinygraph.commands`` entry-point group; this is CLI code, so it prints)."""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from tinygraph.cli_args import non_negative_float, positive_float, positive_int, seed


def add_tasks_parser(subparsers):
    p = subparsers.add_parser("tasks", help="list the sequence tasks with their sizes, sources and licenses")
    p.set_defaults(func=_tasks)


def add_train_parser(subparsers):
    p = subparsers.add_parser(
        "train", help="train a sequence model on a task (tinygraph tasks lists them)",
        description="Train a model on TASK with models.fit; writes OUT/checkpoint.npz, loss.png, metrics.json, "
                    "samples.txt (generative tasks) and slice.png/.dot (a small unrolled slice of the model).")
    p.add_argument("task", help="task name (see: tinygraph tasks)")
    p.add_argument("--cell", choices=["lstm", "gru", "rnn"], help="recurrent cell (default: the task's)")
    p.add_argument("--hidden", type=positive_int, help="hidden units")
    p.add_argument("--layers", type=positive_int, help="stacked recurrent layers")
    p.add_argument("--steps", type=positive_int, help="optimizer steps")
    p.add_argument("--batch", type=positive_int, help="sequences per batch")
    p.add_argument("--lr", type=positive_float, help="Adam learning rate")
    p.add_argument("--seed", type=seed, default=0, help="seed of the weights and the batch order (default 0)")
    p.add_argument("--attention", choices=["none", "dot", "additive"], help="dates: attention (default dot)")
    p.add_argument("--T", type=int, dest="T", help="adding: sequence length (default 50)")
    p.add_argument("--delay", type=int, help="copy: blanks between reading and writing (default 10)")
    p.add_argument("--data", help="pos: a CoNLL-U treebank file")
    p.add_argument("--out", default=None, help="output folder (default runs/TASK)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)


def add_sample_parser(subparsers):
    p = subparsers.add_parser("sample", help="generate from a checkpoint written by tinygraph train")
    p.add_argument("checkpoint", help="checkpoint.npz of tinygraph train")
    p.add_argument("--prompt", default=None, help="text that warms up the state (default: a speaker name)")
    p.add_argument("--steps", type=positive_int, default=500, help="characters to generate (default 500)")
    p.add_argument("--temperature", type=non_negative_float, default=0.8, help="0 is greedy (default 0.8)")
    p.add_argument("--top-k", type=positive_int, default=None, help="sample among the k likeliest characters")
    p.add_argument("--seed", type=seed, default=None, help="seed (same seed, same text)")
    p.set_defaults(func=_sample)


# ---------------------------------------------------------------------------------------
def _tasks(args):
    from . import tasks

    rows = [tasks.describe(n) for n in tasks.names()]
    for info in rows:
        print(f"{info.name}  [{info.kind}]")
        print(f"    {info.description}")
        print(f"    size:    {info.size}")
        print(f"    source:  {info.source}")
        print(f"    license: {info.license}")
        if info.requires:
            print(f"    needs:   {info.requires}")
    return 0


def _train(args):
    from tinygraph import drawing, draw, optim
    from .fit import fit, load_checkpoint
    from .recipes import recipe

    config = {k: getattr(args, k) for k in ("cell", "hidden", "layers", "steps", "batch", "lr", "seed",
                                              "attention", "T", "delay", "data")}
    try:
        r = recipe(args.task, config)
    except ValueError as exc:
        print(f"tinygraph train: {exc}", file=sys.stderr)
        return 2
    from .recipes import RECIPES
    for key in ("attention", "T", "delay", "data"):  # task-specific flags: refused where they mean nothing
        if config[key] is not None and key not in type(r).defaults:
            owners = ", ".join(sorted(t for t, cls in RECIPES.items() if key in cls.defaults))
            print(f"tinygraph train: --{key} does not apply to {args.task} (it is for: {owners})", file=sys.stderr)
            return 2
    try:
        r.load()
    except (ImportError, OSError, ValueError) as exc:
        print(f"tinygraph train: {exc}", file=sys.stderr)
        return 2
    out = args.out or os.path.join("runs", args.task)
    try:
        os.makedirs(out, exist_ok=True)
        if not os.access(out, os.W_OK | os.X_OK):
            raise PermissionError(f"{out!r} is not writable")
    except OSError as exc:
        print(f"tinygraph train: cannot write to --out {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    ckpt = os.path.join(out, "checkpoint.npz")
    if args.resume and not os.path.exists(ckpt):
        print(f"tinygraph train: no checkpoint to resume in {out}/; starting from scratch", file=sys.stderr)
    if os.path.exists(ckpt) and not args.resume:
        os.replace(ckpt, ckpt + ".previous")  # a fresh run never silently continues an old one
    if args.resume and os.path.exists(ckpt):
        try:
            saved = load_checkpoint(ckpt)["extra"].get("config", {})
        except (OSError, ValueError) as exc:
            print(f"tinygraph train: cannot resume from {ckpt}: {exc}", file=sys.stderr)
            return 2
        for key in ("cell", "hidden", "layers"):
            if key in saved and config.get(key) is not None and saved[key] != config[key]:
                print(f"tinygraph train: --{key} {config[key]} differs from the checkpoint's {saved[key]}",
                      file=sys.stderr)
                return 2
            r.config[key] = saved.get(key, r.config[key])
    c = r.config
    model = r.build()
    opt = optim.Adam(model.parameters(), lr=c["lr"])
    print(f"tinygraph train {args.task}: {type(model).__name__} ({c['cell']}, hidden {c['hidden']}, "
          f"{c['layers']} layer(s), {model.num_parameters()} parameters), {c['steps']} steps of {c['batch']}, "
          f"seed {r.seed} -> {out}/", flush=True)

    # Ctrl-C ends training cleanly (fit returns the history so far); a second one interrupts as usual
    history = fit(model, r.batches, r.loss, opt, steps=c["steps"], max_norm=c.get("max_norm"), val=r.validate,
                  val_every=c.get("val_every"), progress=not args.no_progress, checkpoint=ckpt,
                  checkpoint_every=c.get("val_every"), resume=args.resume, extra=r.extra())
    history.save_json(os.path.join(out, "history.json"))
    try:
        history.plot(os.path.join(out, "loss.png"), title=f"tinygraph train {args.task} ({c['cell']}, {c['hidden']})")
    except ImportError as exc:
        print(f"(no loss.png: {exc})", file=sys.stderr)
    if history.interrupted:
        print(f"\ninterrupted after {history.steps} steps; the last checkpoint ({ckpt}) is intact and "
              f"loss.png shows the curve so far. Continue with --resume.")
        return 130
    start = time.perf_counter()
    metrics = {"task": args.task, "config": c, "steps": history.steps,
               "train_seconds": round(history.time[-1], 1) if history.time else 0.0,
               "final_train_loss": history.loss[-1] if history.loss else None}
    metrics.update(r.evaluate(model))
    metrics["eval_seconds"] = round(time.perf_counter() - start, 1)
    from .history import write_atomic
    write_atomic(os.path.join(out, "metrics.json"), json.dumps(metrics, indent=1, default=_jsonable).encode())
    for k, v in metrics.items():
        if k != "config":
            print(f"  {k}: {v}")
    if r.generative:
        text = r.samples(model)
        write_atomic(os.path.join(out, "samples.txt"), text.encode())
        print("samples:\n" + text)
    roots = r.slice_roots(model)
    picture = draw(*roots, title=f"{args.task}: a small unrolled slice of the trained model")
    drawing.save(picture, os.path.join(out, "slice.dot"))
    if drawing.dot_available():
        drawing.save(picture, os.path.join(out, "slice.png"))
    print(f"wrote {', '.join(sorted(os.listdir(out)))} in {out}/")
    return 0


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _sample(args):
    from .fit import load_checkpoint
    from .recipes import recipe
    from .tasks.text import CharVocab

    try:
        saved = load_checkpoint(args.checkpoint)
    except (OSError, ValueError) as exc:
        print(f"tinygraph sample: cannot read {args.checkpoint}: {exc}", file=sys.stderr)
        return 2
    extra = saved["extra"]
    if "vocab" not in extra:
        print(f"tinygraph sample: {args.checkpoint} is a {extra.get('task')!r} model; sampling needs a language "
              f"model (tinygraph train shakespeare)", file=sys.stderr)
        return 2
    r = recipe(extra["task"], extra["config"])
    r.vocab = CharVocab(extra["vocab"])
    model = r.build()
    model.load_state_dict(saved["model"])
    prompt = args.prompt if args.prompt is not None else "ROMEO:\n"
    try:
        ids = r.vocab.encode(prompt)
    except ValueError as exc:
        print(f"tinygraph sample: {exc}", file=sys.stderr)
        return 2
    if ids.size == 0:
        print("tinygraph sample: the prompt is empty", file=sys.stderr)
        return 2
    new = model.generate(ids, args.steps, temperature=args.temperature, top_k=args.top_k, rng=args.seed)
    print(prompt + r.vocab.decode(new))
    return 0


