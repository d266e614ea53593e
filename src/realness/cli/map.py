"""``realness map``: DREAM realness maps of images, saved as overlays, ``.npy`` arrays and figures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from realness.cli.common import add_describer_argument, expand_image_paths, read_descriptions_csv, report_failures


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "map",
        help="map where images stop looking real (DREAM)",
        description="Dense realness maps with DREAM (high = realistic). Each image needs a description "
        "of what looks unrealistic: --description, --descriptions CSV, or --describer to write one. "
        "Bad files are reported on stderr and skipped; the exit status is 1 if any item failed.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, directories or glob patterns")
    text = parser.add_argument_group("descriptions")
    text.add_argument("--description", metavar="TEXT", help="the description, for every image")
    text.add_argument("--descriptions", metavar="CSV", help="CSV with filename and description columns (RAISE-TD layout); --describer fills the gaps")
    add_describer_argument(text)
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="one image: the overlay (.png/.jpg), the raw map (.npy) or the figure (.pdf/.svg); "
        "several images: a directory for NAME_map.png files (default: NAME_map.png here)",
    )
    parser.add_argument("--npy", action="store_true", help="also save the raw map as NAME_map.npy beside the overlay")
    parser.add_argument("--figure", action="store_true", help="also save image | overlay | per-scale maps as NAME_figure.png")
    parser.add_argument("--model", default=None, metavar="ID|DIR", help="dual encoder: Hub id, local directory or open_clip:ARCH[:TAG] (default: openai/clip-vit-base-patch32)")
    parser.add_argument("--window-sizes", type=int, nargs="+", default=None, metavar="PX", help="window sides (default: 128 64 32)")
    parser.add_argument("--stride", type=int, default=None, metavar="PX", help="window stride (default: 4)")
    parser.add_argument("--interpolation", default="bicubic", choices=("bicubic", "bilinear", "nearest", "area"), help="window resize (default: bicubic, antialiased)")
    parser.add_argument("--chunk-size", type=int, default=None, metavar="N", help="windows per forward pass (default: from free memory)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cuda if available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar over windows")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from realness.cli.common import build_describer_from_args
    from realness.dream import DEFAULT_MODEL, DEFAULT_STRIDE, DEFAULT_WINDOW_SIZES, RealnessMapper

    if (args.description is None) == (args.descriptions is None and args.describer is None):
        print("realness map: give --description, or --descriptions and/or --describer", file=sys.stderr)
        return 2
    paths = expand_image_paths(args.paths)
    if not paths:
        print("realness map: no images found", file=sys.stderr)
        return 2
    texts = args.description
    if args.descriptions:
        table = read_descriptions_csv(args.descriptions)
        texts = [table.get(path.name) for path in paths]
    mapper = RealnessMapper(
        args.model or DEFAULT_MODEL,
        window_sizes=args.window_sizes or DEFAULT_WINDOW_SIZES,
        stride=args.stride or DEFAULT_STRIDE,
        device=args.device,
        chunk_size=args.chunk_size,
        interpolation=args.interpolation,
        precision=args.precision,
        describer=build_describer_from_args(args),
        progress=not args.no_progress,
    )
    if isinstance(texts, list) and any(text is None for text in texts) and mapper.describer is None:
        missing = [path.name for path, text in zip(paths, texts) if text is None]
        print(f"realness map: no description in {args.descriptions} for {', '.join(missing[:5])}", file=sys.stderr)
        return 2
    batch = mapper([str(p) for p in paths], texts, on_error="skip")
    for path, result in zip(paths, batch):
        if result is None:
            continue
        target = _overlay_path(path, args.out, several=len(paths) > 1)
        result.save(target)
        written = [target]
        if args.npy and target.suffix != ".npy":
            written.append(result.save(target.with_suffix(".npy")))
        if args.figure:
            from realness.dream.render import save_figure

            written.append(save_figure(result, target.with_name(f"{path.stem}_figure.png")))
        print(f"{path}: {', '.join(str(w) for w in written)}", file=sys.stderr)
    failed = report_failures("map", batch.skipped)
    return 1 if failed else 0


def _overlay_path(image: Path, out: str | None, *, several: bool) -> Path:
    if out is None:
        return Path(f"{image.stem}_map.png")
    if several:
        directory = Path(out)
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f"{image.stem}_map.png"
    return Path(out)
