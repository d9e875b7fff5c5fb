"""``train.py [options]``: train one configuration of chapter 5's from-scratch network.

Part of :mod:`course_utils.cli`. Checks every argument before any work (exit status 2), loads and
splits the data, trains with :func:`course_utils.network.train`, and writes the run folder (and
W&B, when configured) epoch by epoch. Exit status: 0 trained; 1 data not found or the run
diverged (its files say so); 130 interrupted.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from .arguments import PROG, _check_folder, _check_network_size, _check_split, _ignored, build_parser
from .runs import RunFolder, _finite, _prepare_data, start_wandb

__all__ = ["train_main"]


def train_main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_folder(parser, "--run_dir", args.run_dir)
    _check_split(parser, args.dataset, args.val_fraction, args.subset)
    _check_network_size(parser, args.num_layers, args.hidden_size, args.batch_size,
                         "arguments -nhl/--num_layers and -sz/--hidden_size")

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=args.threads, user_api="blas")
    import numpy as np

    from .. import data, network

    hyper = {"momentum": {"beta": args.momentum}, "nag": {"beta": args.momentum}, "rmsprop": {"beta": args.beta, "eps": args.epsilon},
             "adam": {"beta1": args.beta1, "beta2": args.beta2, "eps": args.epsilon},
             "nadam": {"beta1": args.beta1, "beta2": args.beta2, "eps": args.epsilon}}.get(args.optimizer, {})
    # validate the optimizer's hyperparameters before loading anything (argparse-style message, exit 2)
    try:
        network.make_optimizer(args.optimizer, [np.zeros(1)], args.learning_rate, **hyper)
    except (ValueError, TypeError) as exc:
        parser.error(f"invalid optimizer settings for {args.optimizer}: {exc}")

    try:
        ds, X_tr, X_val, X_te, y_tr, y_val = _prepare_data(parser, args.dataset, args.val_fraction, args.subset, args.seed)
    except data.DatasetNotFoundError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1

    net = network.FeedForwardNet(X_tr.shape[1], [args.hidden_size] * args.num_layers, ds.num_classes,
                                 activation=args.activation.lower(), init=args.weight_init.lower(), loss=args.loss,
                                 weight_decay=args.weight_decay, dtype=np.float32, seed=args.seed)
    opt = network.make_optimizer(args.optimizer, [p.value for p in net.params], args.learning_rate, **hyper)

    run_name = args.run_name or f"{time.strftime('%Y%m%d-%H%M%S')}-{args.dataset}-{args.optimizer}"
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config.update(run_name=run_name, data_note=ds.note(), train_examples=len(X_tr), val_examples=len(X_val),
                  test_examples=len(X_te), model=repr(net), optimizer_repr=repr(opt), parameters=net.num_parameters)
    try:
        folder = RunFolder(args.run_dir, run_name)
    except OSError as exc:
        parser.error(f"argument --run_dir: cannot create the run folder in {args.run_dir}: {exc.strerror or exc}")
    wb, wb_status = start_wandb(args, config)
    notes = _ignored(parser, argv, args, wandb_used=wb is not None)
    config["ignored_options"] = notes
    folder.write_json("config.json", config)
    for note in notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)

    print(ds.note())
    print(f"train {len(X_tr):,} / validation {len(X_val):,} / test {len(X_te):,} images")
    print(f"model: {net!r}, {net.num_parameters:,} parameters")
    print(f"optimizer: {opt!r}, lr schedule {args.lr_schedule}, batch size {args.batch_size}, {args.epochs} epoch(s)")
    print(f"W&B: {wb_status}; run folder: {folder.path}", flush=True)

    epochs_done = []

    def on_epoch(epoch: int, row: dict) -> None:
        folder.log_epoch(row)
        epochs_done.append(row)
        if wb is not None:
            wb.log({k: row[k] for k in RunFolder.FIELDS if k != "epoch"}, step=epoch)
        print(f"epoch {epoch}/{args.epochs}  train_loss {row['train_loss']:.4f}  train_acc {row['train_acc']:.4f}  "
              f"val_loss {row['val_loss']:.4f}  val_acc {row['val_acc']:.4f}  ({row['seconds']:.1f} s)", flush=True)

    def finish(summary: dict) -> None:
        folder.write_json("summary.json", summary)
        if wb is not None:
            wb.summary.update(_finite(summary))
            wb.finish()

    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence is detected and reported
            history = network.train(net, X_tr, y_tr, X_val=X_val, y_val=y_val, optimizer=opt,
                                    batch_size=args.batch_size, num_epochs=args.epochs, schedule=args.lr_schedule,
                                    seed=args.seed, callback=on_epoch)
    except KeyboardInterrupt:
        last = epochs_done[-1]["val_acc"] if epochs_done else None
        finish({"status": "interrupted", "test_loss": None, "test_acc": None, "diverged": False,
                "final_val_acc": last, "epochs_run": len(epochs_done)})
        print(f"{PROG}: interrupted after {len(epochs_done)} complete epoch(s); the run folder {folder.path} has "
              f"their metrics", file=sys.stderr)
        return 130
    diverged = bool(history["diverged"].iloc[-1])
    if diverged:
        row = history.iloc[-1].to_dict()
        folder.log_epoch(row)
        epoch = int(row["epoch"])
        print(f"epoch {epoch}/{args.epochs}  the loss became NaN or infinite: training stopped "
              f"(try a smaller learning rate)", flush=True)
        finite = history["val_acc"].dropna()
        finish({"status": "diverged", "test_loss": None, "test_acc": None, "diverged": True,
                "final_val_acc": float(finite.iloc[-1]) if len(finite) else None, "epochs_run": int(len(history)),
                "message": f"the training loss became NaN or infinite in epoch {epoch}; no test evaluation"})
        print(f"{PROG}: error: training diverged in epoch {epoch} (the loss became NaN or infinite), so the network "
              f"was not evaluated on the test set; try a smaller learning rate (-lr). Run folder: {folder.path}",
              file=sys.stderr)
        return 1
    test_loss, test_acc = net.evaluate(X_te, ds.y_test)
    summary = {"status": "completed", "test_loss": test_loss, "test_acc": test_acc, "diverged": False,
               "final_val_acc": float(history["val_acc"].iloc[-1]), "epochs_run": int(len(history))}
    finish(summary)
    print(f"test_loss {test_loss:.4f}  test_acc {test_acc:.4f}")
    return 0
