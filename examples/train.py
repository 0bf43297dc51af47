"""Train an expression classifier with the auxiliary label-map task: the loop, written out.

``mtl-heads train`` is the full engine (torchrun, mid-epoch resume, early stopping, FER+, every
option of ``mtl-heads train --help``). This file is the same loop written out from the engine's
parts, in one process, for reading and changing: same options, same seed, same numbers
(``tests/examples/test_train_tutorial.py`` checks it against the engine). One step reads::

    rows of a batch -> PaperPreprocessing.standardize -> aligned augmentation (48 -> 42, images
    with their label maps) -> PaperPreprocessing.normalize_batch -> MultiTaskModel
    -> MaskedMultiTaskLoss (classes + label maps, masked where no landmarks) -> SGD

Examples::

    python examples/train.py --data synthetic --label-maps 3 --head spatial \\
        --map-loss bce_dice --lambda 3 --epochs 5 --output runs/demo-mt
    python examples/train.py --data fer2013.csv --landmarks fer2013_landmarks.npz \\
        --label-maps 3 --augment full --variants-per-epoch 4 --epochs 30 --output runs/fer-mt

Resume an interrupted run with ``--resume`` (this loop checkpoints at each epoch's end).
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from mtl_heads.train import (
    BEST,
    CHECKPOINT,
    TrainingError,
    TrainState,
    build_parser,
    build_run,
    check_args,
    epoch_record,
    evaluate_tests,
    load_checkpoint,
    resolve_precision,
    save_checkpoint,
    train_one_epoch,
    validate,
    write_metrics,
)


def train(argv: list[str] | None = None) -> dict:
    # 1. Options: the engine's parser, so every option means what it means in `mtl-heads train`.
    args = build_parser().parse_args(argv)
    args.checkpoint_every = 0  # this loop checkpoints at each epoch's end only
    check_args(args)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.workers:
        torch.set_num_threads(args.workers)
    precision, note = resolve_precision(args.precision, device)  # float32 or bfloat16
    if note:
        print(f"note: {note}")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)

    # 2. Everything the run trains with: the data held whole on the device, the preprocessing
    #    fitted on the training images, the augmentation, the model (seeded), the loss, timm's
    #    optimizer and scheduler.
    run = build_run(args, device)
    model, pre, loss_fn, optimizer = run.model, run.pre, run.loss_fn, run.optimizer
    num_classes = len(run.data.classes)
    print(f"data: {run.data.description}: train {len(run.train_set)}, val "
          f"{0 if run.val_set is None else len(run.val_set)}; model {args.backbone} "
          f"({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters), {precision}")

    # 3. Resume: the checkpoint holds the tensors and the loop's state (epoch, history, best).
    state = TrainState()
    if args.resume is not None and (out / CHECKPOINT).is_file():
        state = TrainState.from_dict(
            load_checkpoint(out / CHECKPOINT, model, pre, loss_fn, optimizer, args))
        print(f"resumed at epoch {state.epoch}")
    state.args = vars(args)
    (out / "args.json").write_text(json.dumps(vars(args), indent=2))

    # 4. The epochs: train, score the validation split, keep the best epoch's weights.
    for epoch in range(state.epoch, args.epochs):
        sums = train_one_epoch(epoch, model, run.train_set, optimizer, loss_fn, args,
                               pre=pre, aug=run.aug, state=state, precision=precision,
                               lr_scheduler=run.scheduler)
        record = epoch_record(epoch, sums, optimizer, args)
        if run.val_set is not None:
            v = validate(model, pre, run.val_set, args, num_classes, None, precision=precision)
            record.update(val_acc=v["acc"], val_loss=v["loss"])
            if "iou" in v:  # the label maps the head draws, against the landmarks' maps
                record.update(val_iou=v["iou"], val_nme_mean=v["nme_mean"])
            if state.best_acc is None or v["acc"] > state.best_acc:
                state.best_acc, state.best_epoch = v["acc"], epoch + 1
                save_checkpoint(out / BEST, model, pre, loss_fn, None,
                                {"epoch": epoch + 1, "val_acc": v["acc"]})
        state.history.append(record)
        state.epoch, state.step = epoch + 1, 0
        save_checkpoint(out / CHECKPOINT, model, pre, loss_fn, optimizer, state.to_dict())
        write_metrics(out, state.history)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {record['train_loss']:.4f} train acc "
              f"{record['train_acc']:.4f}" + (f" val acc {record['val_acc']:.4f}"
                                              if "val_acc" in record else "")
              + (f" val IoU {'/'.join(f'{x:.2f}' for x in record['val_iou'].values())}"
                 if "val_iou" in record else ""))

    # 5. The selected weights (best validation epoch) on the test splits; 10 crops with --tta.
    if (out / BEST).is_file():
        load_checkpoint(out / BEST, model, pre, loss_fn, None)
    final = {"selected_epoch": state.best_epoch or len(state.history), "precision": precision}
    if run.val_set is not None:
        final["val"] = validate(model, pre, run.val_set, args, num_classes, None,
                                tta=args.tta and args.tta_val, prior=run.prior,
                                precision=precision)
    final["test"] = evaluate_tests(model, pre, run.data, args, device, None, prior=run.prior,
                                   precision=precision)
    (out / "final.json").write_text(json.dumps(final, indent=2))
    # What ships: the plain timm classifier (the label-map head costs nothing at test time) and
    # the fitted preprocessing.
    save_file({k: v.detach().cpu().contiguous() for k, v in model.deploy().state_dict().items()},
              str(out / "deploy.safetensors"))
    pre.save(out / "preprocessing.safetensors")
    for name, res in [("val", final.get("val")), *final["test"].items()]:
        if res is not None:
            tta = f", 10-crop {res['acc_tta']:.4f}" if "acc_tta" in res else ""
            print(f"{name}: accuracy {res['acc']:.4f}{tta} ({res['n']} images)")
    return final


def main(argv: list[str] | None = None) -> int:
    try:
        train(argv)
    except TrainingError as err:  # the loss stopped being finite
        print(f"error: {err}", file=sys.stderr)
        return 3
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
