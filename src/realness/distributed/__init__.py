"""Scale out on Ray Data: score and describe millions of images on a cluster (``pip install 'realness[ray]'``).

:func:`score_dataset` and :func:`describe_dataset` take a folder, a manifest (CSV or
Parquet with a path column) or a Ray ``Dataset``, and write a folder of Parquet files with
one row per input (:data:`SCORE_COLUMNS`, :data:`DESCRIPTION_COLUMNS`), resumably. The
batch classes (:class:`ScoreBatches`, :class:`DescribeBatches`, :class:`PixelHashBatches`)
and the schemas are public, for your own Ray pipelines. ``import realness.distributed``
does not import ray; the functions that need it fail in one line naming the extra.
"""

from realness.distributed.batches import DescribeBatches, PixelHashBatches, RequestSlots, ScoreBatches, weights_version
from realness.distributed.cluster import ActorPlan, connect, plan_actors, require_ray
from realness.distributed.engine import describe_dataset, score_dataset
from realness.distributed.output import ParquetOutput, ResumeState
from realness.distributed.runs import RunSummary
from realness.distributed.schema import (
    DESCRIPTION_COLUMNS,
    SCORE_COLUMNS,
    description_schema,
    pixel_hash_schema,
    score_schema,
)
from realness.distributed.sources import list_source_paths

__all__ = [
    "DESCRIPTION_COLUMNS",
    "SCORE_COLUMNS",
    "ActorPlan",
    "DescribeBatches",
    "ParquetOutput",
    "PixelHashBatches",
    "RequestSlots",
    "ResumeState",
    "RunSummary",
    "ScoreBatches",
    "connect",
    "describe_dataset",
    "description_schema",
    "list_source_paths",
    "weights_version",
    "pixel_hash_schema",
    "plan_actors",
    "require_ray",
    "score_dataset",
    "score_schema",
]
