"""The ``mtl-heads`` command line: ``mtl-heads annotate ...`` (or ``python -m mtl_heads ...``)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mtl-heads`` command."""
    parser = argparse.ArgumentParser(prog="mtl-heads", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mtl-heads`` console script.

    Args:
        argv: arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    if args.command == "annotate":
        try:
            return _annotate(args)
        except (FileNotFoundError, ValueError, ImportError) as err:
            print(f"mtl-heads annotate: error: {err}", file=sys.stderr)
            return 2
    return 1  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
