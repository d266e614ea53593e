"""``--engine ray``: the same subcommands, run on Ray Data (``pip install 'realness[ray]'``).

``--engine local`` (the default) leaves each subcommand exactly as it is; these helpers
only add the flags and hand the parsed arguments to :mod:`realness.distributed`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from realness.cli.resumable import ray_output_run
from realness.core.pretrained import DEFAULT_MODEL
from realness.distributed import describe_dataset, score_dataset
from realness.errors import UsageError

ENGINES = ("local", "ray")


def add_engine_arguments(parser: argparse.ArgumentParser, *, describe: bool = False) -> None:
    """``--engine``, ``--ray-address``, ``--actors``, ``--cpus-per-actor``, ``--retry-failed``
    (and ``--requests-per-minute`` for ``describe``)."""
    group = parser.add_argument_group("scaling out (--engine ray; pip install 'realness[ray]')")
    group.add_argument(
        "--engine", choices=ENGINES, default="local",
        help="local: this process (default); ray: Ray Data actors, writing --out (filter: its scores, in "
        "OUT.scores beside --out) as a folder of Parquet files that a re-run with --resume continues",
    )
    group.add_argument(
        "--ray-address", metavar="ADDR", default=None,
        help="the Ray cluster to join (auto, ray://HEAD:10001); default: start Ray on this machine",
    )
    group.add_argument("--actors", type=int, default=None, help="actors in the pool (default: from the cluster's GPUs/CPUs)")
    group.add_argument(
        "--cpus-per-actor", type=float, default=None,
        help="CPUs each actor holds; torch threads follow it (default: the spare CPUs shared out)",
    )
    group.add_argument("--retry-failed", action="store_true", help="redo the inputs whose rows in --out have an error")
    if describe:
        group.add_argument(
            "--requests-per-minute", type=float, default=None,
            help="limit on describer requests per minute over all actors together (default: none)",
        )


def _needs_out(command: str, args: argparse.Namespace) -> bool:
    if args.out:
        return False
    print(
        f"realness {command}: --out: the ray engine writes a folder of Parquet files; give one, "
        f"e.g. --out {command}s.parquet",
        file=sys.stderr,
    )
    return True


def score_on_ray(args, source, descriptions, out, **options):
    """``score_dataset`` with the engine flags every subcommand shares (model, batch size, actors, device, ...)."""
    return score_dataset(
        source,
        model=args.model or DEFAULT_MODEL,
        descriptions=descriptions,
        out=out,
        batch_size=args.batch_size or 32,
        actors=args.actors,
        cpus_per_actor=args.cpus_per_actor,
        device=args.device,
        precision=args.precision,
        address=args.ray_address,
        retry_failed=args.retry_failed,
        **options,
    )


def _source(args: argparse.Namespace):
    return args.paths[0] if len(args.paths) == 1 else args.paths


def run_score_on_ray(args: argparse.Namespace) -> int:
    """``realness score ... --engine ray``: exit 0, 1 when some rows failed, 2 on a user error."""
    if _needs_out("score", args):
        return 2
    if getattr(args, "describer", None):
        print(
            "realness score: --describer: with --engine ray describing is its own stage; run "
            "`realness describe ... --engine ray --out descriptions.parquet` first, then pass "
            "--descriptions descriptions.parquet",
            file=sys.stderr,
        )
        return 2
    descriptions = getattr(args, "descriptions", None)
    with ray_output_run("score", args, args.out, names=args.paths):
        summary = score_on_ray(args, _source(args), Path(descriptions) if descriptions else None, args.out)
    print(f"realness score: {summary}", file=sys.stderr)
    if summary.failed:
        print("realness score: each failed row names its reason in the error column", file=sys.stderr)
    return 1 if summary.failed else 0


def run_describe_on_ray(args: argparse.Namespace) -> int:
    """``realness describe ... --engine ray``: exit 0, 1 when some rows failed, 2 on a user error."""
    if _needs_out("describe", args):
        return 2
    for flag, value in (("--timeout", args.timeout), ("--max-retries", args.max_retries), ("--budget", args.budget)):
        if value is not None:  # the actors build their own describers: refused rather than silently ignored
            raise UsageError(flag, "not with --engine ray yet; use --engine local")
    with ray_output_run("describe", args, args.out, names=args.paths):
        summary = _describe_on_ray(args)
    print(f"realness describe: {summary}", file=sys.stderr)
    return 1 if summary.failed else 0


def _describe_on_ray(args: argparse.Namespace):
    return describe_dataset(
        _source(args),
        describer=args.describer,
        out=args.out,
        concurrency=args.concurrency or 16,
        requests_per_minute=args.requests_per_minute,
        actors=args.actors,
        cpus_per_actor=args.cpus_per_actor,
        address=args.ray_address,
        description_cache=None if args.no_description_cache else args.description_cache,
        retry_failed=args.retry_failed,
        progress=not args.no_progress,
    )
