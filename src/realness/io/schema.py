"""The columns of every table realness writes, declared once.

One word, one meaning, in every table (CLI, workflows, Ray):

- ``path``: the image, as given (``item <i>`` for an in-memory one).
- ``score``: its realness score (higher = more real); ``score_low`` / ``score_high``: the ends
  of its interval where the model gives one.
- ``description``: the text the score read; ``verdict``: its first word (yes / somewhat / no).
- ``error``: why the image has no result (empty when it has one).
- ``scorer`` / ``scorer_version``: the CORE model that scored it; ``describer`` / ``prompt_id``:
  the vision-language model that described it; ``generator``: the model that generated it
  (``compare``). ``model`` is never a column: it named all three.
"""

from __future__ import annotations

#: Every column and the type its values have (``None`` = empty is allowed in all but ``path``).
COLUMN_TYPES = {
    "rank": int,
    "path": str,
    "generator": str,
    "prompt_id": str,
    "score": float,
    "score_low": float,
    "score_high": float,
    "kept": bool,
    "description": str,
    "verdict": str,
    "error": str,
    "image_sha256": str,
    "scorer": str,
    "scorer_version": str,
    "describer": str,
    "cached": bool,
}

#: ``realness score`` and :meth:`realness.core.ScoreResult.to_rows`.
SCORE_COLUMNS = ("path", "score", "score_low", "score_high", "description", "verdict", "error")
#: ``realness describe``: what a later ``--descriptions`` reads (a training table adds ``mos``).
DESCRIBE_COLUMNS = ("path", "description", "verdict", "error")
#: ``realness filter`` and :meth:`realness.workflows.filtering.FilterResult.to_rows`.
FILTER_COLUMNS = ("rank", "path", "score", "score_low", "score_high", "kept", "description", "verdict", "error")
#: ``realness compare --out``: one row per generated image.
COMPARE_COLUMNS = ("path", "generator", "prompt_id", "score", "score_low", "score_high", "description", "verdict", "error")
#: ``--engine ray`` score output: the score table plus the scoring model.
RAY_SCORE_COLUMNS = (*SCORE_COLUMNS, "scorer", "scorer_version")
#: ``--engine ray`` describe output: the describe table plus the cache key and the describer.
RAY_DESCRIBE_COLUMNS = ("path", "image_sha256", "description", "verdict", "error", "describer", "prompt_id", "cached")
