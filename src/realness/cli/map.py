"""``realness map``: DREAM realness maps of images, saved as overlays, ``.npy`` arrays and figures."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from realness.cli.common import (
    add_describer_argument,
    add_descriptions_arguments,
    add_runtime_arguments,
    build_describer_from_args,
    expand_image_paths,
    match_descriptions,
    report_failures,
    show_progress,
)
from realness.cli.resumable import ResumableRun, add_resume_argument, check_resume, journal_for
from realness.core.pretrained import DEFAULT_MODEL
from realness.describers.factory import DESCRIBERS
from realness.dream import DEFAULT_EMBEDDER, DEFAULT_STRIDE, DEFAULT_WINDOW_SIZES, CoreMapper, RealnessMapper
from realness.dream.methods import list_map_methods, map_method
from realness.errors import DescriptionsError, SkippedItem, UsageError
from realness.hub import available_locally
from realness.io.files import check_outside_scanned_folders, scanned_folders
from realness.io.tables import check_output_path

#: The journal's columns: each image, the files written for it, or why it failed.
JOURNAL_COLUMNS = ("path", "outputs", "error")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "map",
        help="map where images stop looking real (DREAM, or the bundled CORE model offline)",
        description="Dense realness maps (high = realistic). --method dream: DREAM's windows against a "
        "description of what looks unrealistic (--description, --descriptions CSV, or --describer to write "
        "one) through a CLIP model; --method core: regions read by the bundled CORE model, no text and no "
        "network needed; auto (the default): dream when a description is given and its CLIP model is on this "
        "machine, else core. Bad files are reported on stderr and skipped; the exit status is 1 if any item failed.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, directories or glob patterns")
    text = parser.add_argument_group("descriptions")
    add_descriptions_arguments(text, help="the images' descriptions (--describer fills the gaps)", single=True)
    add_describer_argument(text)
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="one image: the overlay (.png/.jpg), the raw map (.npy) or the figure (.pdf/.svg); "
        "several images: a directory for NAME_map.png files; never inside a folder given as PATH (default: "
        "beside the input: FOLDER_maps/ for a folder or glob, NAME_map.png for one image file, maps/ beside "
        "the first of several image files)",
    )
    parser.add_argument("--npy", action="store_true", help="also save the raw map as NAME_map.npy beside the overlay")
    parser.add_argument("--figure", action="store_true", help="also save image | overlay | per-scale maps as NAME_figure.png")
    parser.add_argument(
        "--model", default=None, metavar="NAME|DIR",
        help="dream: the dual encoder, ORG/REPO or hf-hub:ORG/REPO, a local directory or open_clip:ARCH[:TAG] "
        "(default: openai/clip-vit-base-patch32); --method core: a CORE model (default: realness-core-lite)",
    )
    parser.add_argument(
        "--method", choices=("auto", *list_map_methods()), default="auto",
        help="core: the bundled CORE model, offline, no description needed; dream: CLIP windows against the "
        "description; auto (default): dream when a description is given and its CLIP is here, else core",
    )
    parser.add_argument(
        "--window-sizes", type=int, nargs="+", default=None, metavar="PX",
        help="window sides (default: 128 64 32; fewer sizes are faster)",
    )
    parser.add_argument(
        "--stride", type=int, default=None, metavar="PX",
        help="window stride (default: 4; work falls with its square: 16 is 16x faster)",
    )
    parser.add_argument(
        "--interpolation", default="bicubic", choices=("bicubic", "bilinear", "nearest", "area"),
        help="window resize (default: bicubic, antialiased)",
    )
    add_runtime_arguments(parser, batch_default=None, batch_help="windows per forward pass")
    add_resume_argument(parser, what="the maps")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.description is not None and args.describer is not None:
        raise UsageError("--description", "give either --description TEXT or --describer NAME, not both")
    if args.describer:
        DESCRIBERS.parse(args.describer)  # a mistyped name is refused whichever method runs
    method, why = choose_method(args)
    method_class = map_method(method)
    if method_class.needs_descriptions and args.description is None and args.descriptions is None and args.describer is None:
        raise UsageError("--description", "each image needs a description: give --description, --descriptions or --describer")
    check_resume(args, needs="--out, the file or folder to continue")
    paths = expand_image_paths(args.paths)
    if not paths:
        print("realness map: no images found", file=sys.stderr)
        return 2
    texts = match_descriptions("map", args, paths)
    out, several = map_destination(args.out, args.paths, paths)
    # Refuse, before any work, an output that would overwrite one of the images.
    for path in paths:
        check_output_path(_overlay_path(path, out, several=several), inputs=paths, what="map output")
    names = [str(path) for path in paths]
    journal = journal_for(out, JOURNAL_COLUMNS, args, names=names, table=False, journal=map_journal_path(out, several=several))
    print(f"realness map: method {method} ({why})", file=sys.stderr)
    with ResumableRun("map", names, journal) as run_:
        mapper = RealnessMapper(
            args.model or DEFAULT_EMBEDDER,
            method=method,
            core_model=args.model if args.method != "auto" else None,  # --model names a CORE model only with --method
            window_sizes=args.window_sizes or DEFAULT_WINDOW_SIZES,
            stride=args.stride or DEFAULT_STRIDE,
            device=args.device,
            batch_size=args.batch_size,
            interpolation=args.interpolation,
            precision=args.precision,
            # A method that needs no text asks no describer for one.
            describer=build_describer_from_args(args) if method_class.needs_descriptions else None,
            progress=show_progress(args) if not several else False,
        )
        if method_class.needs_descriptions and isinstance(texts, list) and any(text is None for text in texts) and mapper.describer is None:
            missing = [path.name for path, text in zip(paths, texts) if text is None]
            raise DescriptionsError(str(args.descriptions), f"no description for {', '.join(missing[:5])}")
        shown = several and show_progress(args) is not False
        with tqdm(total=len(run_.todo), unit="image", disable=not shown, file=sys.stderr) as progress:
            # Each map is saved (and journaled) before the next ones start.
            step = method_class.images_per_pass
            for start in range(0, len(run_.todo), step):
                chunk = run_.todo[start : start + step]
                chunk_texts = [texts[i] if texts else None for i in chunk]
                for row in _map_some(mapper, [paths[i] for i in chunk], chunk_texts, out, args, several=several):
                    run_.save([row])
                    progress.update()
    new = run_.new_rows()
    failed = sum(1 for row in new if row.get("error"))
    if run_.interrupted:
        print(run_.interrupted_line(f"{len(new) - failed} mapped, {failed} failed"), file=sys.stderr)
        return 130
    run_.complete()
    if run_.kept:
        print(f"realness map: {len(new) - failed} mapped, {failed} failed, {run_.kept} already there", file=sys.stderr)
    return 1 if any(row.get("error") for row in run_.all_rows()) else 0


def _map_some(
    mapper: RealnessMapper, paths: list[Path], texts: list[str | None], out: Path, args: argparse.Namespace, *,
    several: bool,
) -> Iterator[dict]:
    """Map images and save each one's outputs; yields their journal rows (the files written, or why it failed)."""
    batch = mapper([str(path) for path in paths], None if all(text is None for text in texts) else texts, on_error="skip")
    reasons = {item.index: item.reason for item in batch.skipped}
    for index, (path, result) in enumerate(zip(paths, batch)):
        if result is None:
            report_failures("map", [SkippedItem(0, str(path), reasons.get(index, "not mapped"))])
            yield {"path": str(path), "outputs": None, "error": reasons.get(index, "not mapped")}
        else:
            yield _save_map(result, path, out, args, several=several)


def _save_map(result, path: Path, out: Path, args: argparse.Namespace, *, several: bool) -> dict:
    """Save one map's outputs; returns its journal row."""
    target = _overlay_path(path, out, several=several)
    target.parent.mkdir(parents=True, exist_ok=True)
    result.save(target)
    written = [target]
    if args.npy and target.suffix != ".npy":
        written.append(result.save(target.with_suffix(".npy")))
    if args.figure:
        written.append(result.save_figure(target.with_name(f"{path.stem}_figure.png")))
    outputs = ", ".join(str(w) for w in written)
    print(f"{path}: {outputs}", file=sys.stderr)
    return {"path": str(path), "outputs": outputs, "error": None}


def choose_method(args: argparse.Namespace) -> tuple[str, str]:
    """The map method to run and why, in a few words; ``auto`` asks no server (see :func:`realness.hub.available_locally`)."""
    if args.method != "auto":
        return args.method, "--method"
    if args.description is None and args.descriptions is None and args.describer is None:
        return CoreMapper.name, f"no description given: regions read by the bundled {DEFAULT_MODEL}"
    clip = args.model or DEFAULT_EMBEDDER
    if str(clip).startswith("open_clip:") or available_locally(clip):  # open_clip keeps its own cache
        return RealnessMapper.name, f"{clip} against the descriptions"
    return CoreMapper.name, f"{clip} is not on this machine: regions read by the bundled {DEFAULT_MODEL}; --method dream downloads it"


def map_destination(out: str | None, patterns: list[str], paths: list[Path]) -> tuple[Path, bool]:
    """Where the maps go, and whether that is a folder of ``NAME_map.png`` files.

    Without ``--out``: beside the input, never into the folder it reads nor the current
    directory (a folder or glob ``gen`` -> ``gen_maps/``; one image file -> ``NAME_map.png``
    beside it; several files -> ``maps/`` beside the first).

    Raises:
        UsageError: ``--out`` is a file where several images need a folder.
        OutputError: the maps would land inside a folder the command reads images from.
    """
    folders = scanned_folders(patterns)
    if out is not None:
        check_outside_scanned_folders(out, patterns, what="the maps", flag="--out")
        several = len(paths) > 1
        if several and Path(out).is_file():
            raise UsageError(out, f"is a file; with {len(paths)} images --out is the folder for their NAME_map.png files: "
                             "give a folder")
    elif folders:
        folder = folders[0].resolve()
        out, several = str(folder.with_name(f"{folder.name}_maps")), True
    elif len(paths) == 1:
        out, several = str(paths[0].with_name(f"{paths[0].stem}_map.png")), False
    else:
        out, several = str(paths[0].with_name("maps")), True
    check_outside_scanned_folders(out, patterns, what="the maps", flag="--out")
    return Path(out), several


def map_journal_path(out: str | Path | None, *, several: bool) -> Path | None:
    """Where ``map`` journals the maps it wrote: ``DIR/maps.partial`` for several images, ``OUT.partial`` for one."""
    if out is None:
        return None
    return Path(out) / "maps.partial" if several else Path(f"{out}.partial")


def _overlay_path(image: Path, out: Path, *, several: bool) -> Path:
    return out / f"{image.stem}_map.png" if several else out
