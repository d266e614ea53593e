"""The Ray cluster a run uses: Ray imported or named as the extra to install, connected, and the actors it can hold planned."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from realness.errors import MissingDependencyError, RealnessError

#: Environment variables handed to every worker (``runtime_env``): on a cluster a worker
#: sees none of the driver's environment otherwise.
FORWARDED_ENV_PREFIXES = ("HF_", "REALNESS_", "OPENAI_", "TRANSFORMERS_", "TORCH_HOME")

def require_ray():
    """Import ray (and Ray Data), or fail in one line naming the extra to install.

    Raises:
        MissingDependencyError: ray is not installed.
    """
    try:  # optional: the ray extra
        import ray
        import ray.data  # noqa: F401  (the part this engine uses; missing in a bare "ray" install)
    except ImportError as error:
        raise MissingDependencyError("ray[data]", "ray", "the ray engine (scaling out)") from error
    return ray


def connect(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address`` (``auto``, ``ray://host:10001``), or start a local one.

    Does nothing when this process is already connected (e.g. after your own ``ray.init``).
    Environment variables whose names start with :data:`FORWARDED_ENV_PREFIXES` reach
    the workers through ``runtime_env``.
    """
    ray = require_ray()
    if ray.is_initialized():
        return
    forwarded = {name: value for name, value in os.environ.items() if name.startswith(FORWARDED_ENV_PREFIXES)}
    try:
        ray.init(
            address=address,
            num_cpus=num_cpus if address is None else None,
            runtime_env={"env_vars": forwarded} if forwarded else None,
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise RealnessError(f"--ray-address {address}: cannot connect ({error})") from error


@dataclass(frozen=True)
class ActorPlan:
    """How many actors a stage runs and what each holds.

    Attributes:
        actors: actors in the pool.
        cpus_per_actor: Ray ``num_cpus`` of each (fractions allowed).
        gpus_per_actor: Ray ``num_gpus`` of each (0 on a CPU cluster).
        threads: torch threads per actor (the whole CPUs it holds, at least 1).
    """

    actors: int
    cpus_per_actor: float
    gpus_per_actor: float
    threads: int


def plan_actors(
    stage: str,
    *,
    actors: int | None = None,
    cpus_per_actor: float | None = None,
    gpus_per_actor: float | None = None,
    resources: Mapping[str, float] | None = None,
    light: bool = False,
) -> ActorPlan:
    """Choose (or check) the actor pool of a stage against the cluster's resources, before starting.

    One whole CPU is always left free: Ray Data needs it to read and hand out blocks, and
    when actors hold every CPU the pipeline hangs without an error.

    Args:
        stage: the stage's name, for messages (``score``, ``describe``).
        actors: pool size (default: one per GPU, else one per spare CPU; 2 for light stages).
        cpus_per_actor: CPUs each actor holds (default: the spare CPUs shared out, at most 1
            for light stages, whole CPUs where they go round).
        gpus_per_actor: GPUs each actor holds (default: 1 when the cluster has GPUs and the
            stage is not light, else 0).
        resources: the cluster's resources (default: ``ray.cluster_resources()``).
        light: a stage of cheap actors waiting on the network (describing).

    Returns:
        The :class:`ActorPlan`.

    Raises:
        RealnessError: the cluster cannot hold that pool with one CPU to spare.
    """
    if resources is None:
        resources = require_ray().cluster_resources()
    total_cpus = float(resources.get("CPU", 0))
    total_gpus = float(resources.get("GPU", 0))
    spare = total_cpus - 1
    if actors is not None and actors < 1:
        raise RealnessError(f"--actors: must be at least 1, not {actors}")
    if spare <= 0:
        raise RealnessError(
            f"the {stage} stage needs a Ray cluster with at least 2 CPUs (one stays free for reading); "
            f"this one has {total_cpus:g}"
        )
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if total_gpus >= 1 and not light else 0.0
    if actors is None:
        if gpus_per_actor:
            actors = max(1, int(total_gpus // gpus_per_actor))
        elif light:
            actors = 2
        else:
            actors = max(1, int(spare // (cpus_per_actor or 1)))
    if cpus_per_actor is None:
        share = spare / actors
        cpus_per_actor = min(share, 1.0) if light else (float(math.floor(share)) if share >= 1 else share)
    needed_cpus = actors * cpus_per_actor + 1
    if needed_cpus > total_cpus + 1e-9:
        raise RealnessError(
            f"the {stage} stage needs {actors} actors x {cpus_per_actor:g} CPUs + 1 CPU left free = "
            f"{needed_cpus:g} CPUs, but the Ray cluster has {total_cpus:g}: lower --actors or --cpus-per-actor "
            "(with no CPU free, Ray Data hangs instead of failing)"
        )
    if actors * gpus_per_actor > total_gpus + 1e-9:
        raise RealnessError(
            f"the {stage} stage needs {actors} actors x {gpus_per_actor:g} GPUs, but the Ray cluster has "
            f"{total_gpus:g}: lower --actors"
        )
    return ActorPlan(actors, cpus_per_actor, gpus_per_actor, max(1, int(cpus_per_actor)))
