"""The ``mtl-heads`` command line (or ``python -m mtl_heads ...``): ``annotate`` a data source with
landmarks, ``train`` a classifier with or without the auxiliary label maps, ``study`` arms over
paired seeds, ``predict`` the expressions of the faces in photos, ``export`` a trained
classifier."""

import argparse
import json
import sys
import time
from collections.abc import Sequence

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mtl-heads`` command."""
    parser = argparse.ArgumentParser(prog="mtl-heads", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    # train and study have parsers of their own (mtl_heads.train, mtl_heads.study): main() hands
    # them the rest of the command line; these entries list them in `mtl-heads --help`.
    sub.add_parser("train", add_help=False,
                   help="train one run (mtl-heads train --help for its options)")
    sub.add_parser("study", add_help=False,
                   help="paired-seed studies: run, estimate, collect, report, readme "
                        "(mtl-heads study --help)")
    p = sub.add_parser(
        "annotate",
        help="write a 68-point landmark file for a data source",
        description=(
            "Run dlib's HOG face detector and 68-point shape predictor over every image of DATA "
            "(a fer2013.csv, a TFD .mat, a Kaggle FER2013 image folder or a class-per-folder "
            "image tree) and write a landmark file covering the whole source in its order. "
            "Resumable: finished chunks are kept in OUTPUT.parts/ and skipped on a rerun. "
            "dlib's 68-point model is trained on 300-W (research use only)."
        ),
    )
    p.add_argument("data", help="fer2013.csv, TFD_*.mat, or an image folder")
    p.add_argument("-o", "--output", required=True, help="landmark file to write (.npz)")
    p.add_argument("--upsample", type=int, default=4, help="upsampling factor (default 4)")
    p.add_argument(
        "--second-threshold",
        type=float,
        default=-0.5,
        help="detector threshold of the second pass on missed faces (default -0.5)",
    )
    p.add_argument("--no-second-pass", action="store_true", help="run the first pass only")
    p.add_argument(
        "--min-face-fraction",
        type=float,
        default=0.5,
        help="smallest pass-2 face box, as a fraction of the image side (default 0.5)",
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--chunk-size", type=int, default=256, help="images per resumable chunk")
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="annotate only the first N images (quick checks; such a file only fits "
        "a source of those N images)",
    )
    p.add_argument(
        "--size", type=int, default=48, help="image size for class-per-folder trees (default 48)"
    )
    p.add_argument("--rgb", action="store_true", help="class-per-folder trees: keep RGB")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "predict",
        help="classify the facial expressions of the faces in photos",
        description=(
            "Find the faces in IMAGE (a file or a folder of images, any size, colour or grey) "
            "with dlib, frame each like a 48x48 FER2013 face, and classify it with the model "
            "bundled with mtl-heads or one trained by mtl-heads train (its fitted "
            "preprocessing, 10-crop test views). Prints per face the box (left, top, right, "
            "bottom) and the top-3 classes. With --no-detect every image is one face, already "
            "framed. dlib's 68-point model (300-W) and FER2013 are for research use only."
        ),
    )
    p.add_argument("image", help="an image file or a folder of images")
    p.add_argument("--checkpoint", default=None,
                   help="a train.py run folder, checkpoint file or bundle (default: the model "
                        "bundled with mtl-heads)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON instead of text")
    out.add_argument("--csv", action="store_true",
                     help="print CSV instead of text: one row per face (per file without a face)")
    p.add_argument("--save-overlay", metavar="DIR", default=None,
                   help="write each image with boxes, labels and label maps into DIR")
    p.add_argument("--no-detect", action="store_true",
                   help="no face detection: every image is one face framed like FER2013 "
                        "(a folder of crops), resized to the model's 48x48 grey")
    p.add_argument("--upsample", type=int, default=None,
                   help="detector upsampling factor: 2 finds faces down to ~40 px (dlib's "
                        "customary single upsampling; default), 1 is ~4x faster for faces of "
                        "~80 px and more, 3 finds ~30 px faces at ~2x the time of 2")
    p.add_argument("--batch-size", type=int, default=256, help="faces per network call")

    p = sub.add_parser(
        "export",
        help="write a trained classifier as ONNX, TorchScript or safetensors",
        description=(
            "Export the deploy model of a train.py run or of the bundled model (label-map head "
            "dropped) with its fitted preprocessing folded in: input raw stored-size grey faces "
            "(0-255), output class probabilities. safetensors writes a plain timm state dict "
            "(preprocessing and class names in its metadata)."
        ),
    )
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="a train.py run folder, checkpoint file or bundle (default: the model "
                        "bundled with mtl-heads)")
    p.add_argument("--format", required=True, choices=["onnx", "torchscript", "safetensors"])
    p.add_argument("-o", "--output", required=True, help="file to write")
    p.add_argument("--tta", action="store_true",
                   help="average over the 10 test views inside the graph (as predict does)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    return parser


def _annotate(args: argparse.Namespace) -> int:
    from .annotate import annotate_images, coverage_report, read_source

    if args.limit is not None and args.limit < 1:
        raise SystemExit(f"--limit must be positive, got {args.limit}")
    t0 = time.perf_counter()
    src = read_source(args.data, size=args.size, grayscale=not args.rgb)
    images, labels, groups = src.images, src.labels, src.groups
    description = src.description
    if args.limit is not None and args.limit < len(images):
        n = args.limit
        images = images[:n]
        labels = None if labels is None else labels[:n]
        groups = {k: v[:n] for k, v in groups.items()}
        description += f", first {n}"
    t1 = time.perf_counter()
    print(
        f"{args.data}: {len(images)} images {images.shape[1:]} decoded in {t1 - t0:.1f} s",
        file=sys.stderr,
    )
    result = annotate_images(
        images,
        args.output,
        source=description,
        upsample=args.upsample,
        second_threshold=None if args.no_second_pass else args.second_threshold,
        min_face_fraction=args.min_face_fraction,
        workers=args.workers,
        chunk_size=args.chunk_size,
        progress=not args.no_progress,
    )
    t2 = time.perf_counter()
    print(
        f"wrote {args.output}: {result.valid.sum()} of {len(result)} images with landmarks "
        f"({result.valid.mean():.1%}); annotation {t2 - t1:.1f} s "
        f"({len(images) / max(t2 - t1, 1e-9):.1f} images/s, includes chunks done earlier)"
    )
    print(coverage_report(result.valid, result.passes, groups, labels, src.classes))
    return 0


def _predict(args: argparse.Namespace) -> int:
    import csv
    from pathlib import Path

    from .predict import DEFAULT_UPSAMPLE, csv_columns, draw_overlay, list_images, predict

    if args.no_detect and args.upsample is not None:
        raise ValueError("--upsample sets the face detector, which --no-detect turns off")
    upsample = DEFAULT_UPSAMPLE if args.upsample is None else args.upsample
    if upsample < 1 or args.batch_size < 1:
        raise ValueError(
            f"--upsample and --batch-size must be positive, got {upsample}, {args.batch_size}"
        )
    files, others = list_images(args.image)
    results, trained = predict(files, args.checkpoint, detect=not args.no_detect,
                               upsample=upsample, batch_size=args.batch_size)
    if args.checkpoint is None:
        print(f"model: {trained.path} (bundled with mtl-heads; research use only, see "
              f"{trained.path.with_suffix('.md')})", file=sys.stderr)
    classes = trained.classes
    if args.json:
        out = {"checkpoint": str(trained.path), "classes": classes,
               "detect": not args.no_detect, "upsample": None if args.no_detect else upsample,
               "images": [r.to_dict(classes) for r in results],
               "not_images": [str(p) for p in others]}
        print(json.dumps(out, indent=2))
    elif args.csv:
        for path in others:  # stdout stays one CSV table
            print(f"{path}: not an image file (suffix {path.suffix!r}), skipped", file=sys.stderr)
        writer = csv.DictWriter(sys.stdout, fieldnames=csv_columns(classes), lineterminator="\n")
        writer.writeheader()
        for r in results:
            writer.writerows(r.to_rows(classes))
    else:
        for path in others:
            print(f"{path}: not an image file (suffix {path.suffix!r}), skipped")
        for r in results:
            if args.no_detect:  # one face per file: one line per file
                top = ", ".join(f"{c} {p:.3f}" for c, p in r.faces[0].top(classes))
                print(f"{r.path}: {top}")
                continue
            if not r.faces:
                print(f"{r.path}: no face found ({r.size[0]}x{r.size[1]})")
                continue
            print(f"{r.path}: {len(r.faces)} face{'s' if len(r.faces) > 1 else ''}")
            for i, face in enumerate(r.faces):
                top = ", ".join(f"{c} {p:.3f}" for c, p in face.top(classes))
                print(f"  face {i + 1} box {face.box}: {top}")
    if args.save_overlay:
        folder = Path(args.save_overlay)
        root = Path(args.image) if Path(args.image).is_dir() else None
        for r in results:
            # keep the folder's layout: crops in class folders often share file names
            rel = r.path.relative_to(root).parent if root else Path()
            target = folder / rel / f"{r.path.stem}_overlay.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            draw_overlay(r.path, r, classes, trained.crop).save(target)
            print(f"wrote {target}", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_model
    from .pretrained import bundled_model

    checkpoint = args.checkpoint or bundled_model(
        f"mtl-heads export RUN_FOLDER --format {args.format} -o {args.output}")
    path = export_model(checkpoint, args.output, args.format, tta=args.tta,
                        opset=args.opset)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {args.format})")
    return 0


COMMANDS = {"annotate": _annotate, "predict": _predict, "export": _export}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mtl-heads`` console script.

    Args:
        argv: arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        from .train import main as train_main

        return train_main(argv[1:], prog="mtl-heads train")
    if argv and argv[0] == "study":
        from .study.cli import main as study_main

        return study_main(argv[1:], prog="mtl-heads study")
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (FileNotFoundError, ValueError, ImportError) as err:
        print(f"mtl-heads {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
