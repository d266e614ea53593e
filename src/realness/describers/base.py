"""What every describer shares: the prompt, the ``Description`` record and the ``Describer`` protocol.

A describer answers the REALM question about each image (is anything unrealistic: yes,
no or somewhat, and what) with a short text. Failures are per image: ``describe`` returns
one :class:`Description` per input, in order, and a failed one has ``text=None`` and its
``error`` set, so a caller can always tell which items failed and why.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from realness.errors import DescriberError, check_on_error
from realness.io.inputs import load_images
from realness.text.verdict import Verdict, parse_verdict

REALM_PROMPT_TEXT = (
    "Is there anything unrealistic in this image — yes, no, or somewhat? If yes or somewhat, "
    "explain in at most 30 words what looks unrealistic, such as a distorted face, uneven object "
    "transitions, or any other feature."
)


@dataclass(frozen=True)
class Prompt:
    """A versioned prompt: its ``id`` changes whenever its text does.

    The id ends with a hash of the text, so a cache keyed by prompt id can never hand
    back a text that answered a different question.

    Attributes:
        name: A short human-readable name, e.g. ``"realm"``.
        text: The exact text sent to the model with the image.
    """

    name: str
    text: str

    @property
    def id(self) -> str:
        """``"<name>-<first 12 hex digits of sha256(text)>"``."""
        return f"{self.name}-{hashlib.sha256(self.text.encode('utf-8')).hexdigest()[:12]}"


#: The REALM paper's prompt, verbatim (the RAISE-TD descriptions were made with it).
DEFAULT_PROMPT = Prompt("realm", REALM_PROMPT_TEXT)


@dataclass(frozen=True)
class Description:
    """One image's description, or the reason there is none.

    Attributes:
        item: A readable name of the input (its path, or ``"item 3 (ndarray)"``).
        text: The description, or None when the item failed.
        verdict: ``"yes"``, ``"somewhat"`` or ``"no"`` from the text's first word; None when
            the text opens with none of them or the item failed.
        model: The describer's model id.
        prompt_id: The :attr:`Prompt.id` the text answers.
        error: Why the item failed (None when it did not).
        cached: True when the text came from the cache instead of the model.
        prompt_tokens: Input tokens this run spent on the item (0 when cached).
        completion_tokens: Output tokens this run spent on the item (0 when cached).
    """

    item: str
    text: str | None
    verdict: Verdict | None
    model: str
    prompt_id: str
    error: str | None = None
    cached: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def ok(self) -> bool:
        """True when the item has a text."""
        return self.error is None

    @classmethod
    def success(cls, item: str, text: str, model: str, prompt_id: str, **extra: Any) -> Description:
        """A described item, its verdict parsed from the text."""
        return cls(item, text, parse_verdict(text), model, prompt_id, **extra)

    @classmethod
    def failure(cls, item: str, reason: str, model: str, prompt_id: str) -> Description:
        """A failed item: no text, the reason in ``error``."""
        return cls(item, None, None, model, prompt_id, error=reason)

    def as_cached(self) -> Description:
        """This description as a cache hit: flagged cached, no tokens spent this run."""
        return replace(self, cached=True, prompt_tokens=0, completion_tokens=0)


@dataclass(frozen=True)
class DescribeSummary:
    """Counts over one run's descriptions (what the CLI prints at the end).

    Attributes:
        described: Items with a text (cache hits included).
        cached: Items whose text came from the cache.
        failed: Items without a text.
        prompt_tokens: Input tokens spent.
        completion_tokens: Output tokens spent.
    """

    described: int
    cached: int
    failed: int
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __str__(self) -> str:
        return (
            f"described {self.described} (cached {self.cached}), failed {self.failed}, "
            f"tokens used {self.total_tokens} ({self.prompt_tokens} in, {self.completion_tokens} out)"
        )


def summarize_descriptions(descriptions: Sequence[Description]) -> DescribeSummary:
    """Count described, cached and failed items and the tokens spent in a run.

    Args:
        descriptions: What one or more ``describe`` calls returned.

    Returns:
        The totals.
    """
    return DescribeSummary(
        described=sum(d.ok for d in descriptions),
        cached=sum(d.ok and d.cached for d in descriptions),
        failed=sum(not d.ok for d in descriptions),
        prompt_tokens=sum(d.prompt_tokens for d in descriptions),
        completion_tokens=sum(d.completion_tokens for d in descriptions),
    )


def to_pil_image(image: Any) -> Any:
    """A decoded 3×H×W float tensor in [0, 1] as an RGB ``PIL.Image`` (the same uint8 pixels it hashes to).

    Args:
        image: The decoded image.

    Returns:
        The ``PIL.Image.Image``.
    """
    # numpy, not torch: many small torch ops from several threads contend for its intra-op pool.
    pixels = image.detach().to("cpu").permute(1, 2, 0).numpy() * 255.0
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


@runtime_checkable
class Describer(Protocol):
    """Anything that turns images into :class:`Description` objects.

    Attributes:
        model: The model id (part of the cache key).
        prompt: The prompt the texts answer (its id is part of the cache key).
    """

    model: str
    prompt: Prompt

    def describe(self, images: Any, *, on_error: str = "raise") -> list[Description]:
        """Describe images: one :class:`Description` per input, in order.

        Args:
            images: A single image or a batch, in any form ``realness.io.inputs.load_images`` accepts.
            on_error: ``"raise"`` stops at the first bad image or failed description;
                ``"skip"`` goes on and marks the item failed (``text=None``, ``error`` set).

        Returns:
            One description per input item.

        Raises:
            InvalidImageError: An input is not a usable image (``on_error="raise"``).
            DescriberError: An image could not be described (``on_error="raise"``).
        """
        ...


class BaseDescriber(ABC):
    """Shared ``describe``: load the images, describe the good ones, apply ``on_error``.

    Subclasses implement :meth:`describe_tensors`, which never raises for one bad item.

    Args:
        model: The model id.
        prompt: The prompt to ask.
    """

    #: Smallest short side (pixels) described: a thinner image shows a model nothing, so a
    #: 1 x 1 or a 20000 x 2 image is refused before anything is asked (or paid for).
    min_size: int = 8

    def __init__(self, model: str, prompt: Prompt = DEFAULT_PROMPT):
        self.model = model
        self.prompt = prompt

    @abstractmethod
    def describe_tensors(self, images: Sequence[Any], names: Sequence[str]) -> list[Description]:
        """Describe decoded images (3×H×W float tensors in [0, 1]); failures as failed descriptions.

        Args:
            images: Decoded images.
            names: A readable name per image, used in errors.

        Returns:
            One description per image, in order.
        """

    def describe(self, images: Any, *, on_error: str = "raise") -> list[Description]:
        """Describe images: one :class:`Description` per input, in order.

        Under ``on_error="raise"`` every good image is still described before the first
        failure is raised, so a cache keeps what was paid for and a re-run pays only for
        the rest.

        Args:
            images: A single image or a batch, in any form ``realness.io.inputs.load_images`` accepts.
            on_error: ``"raise"`` or ``"skip"`` (failed items get ``text=None`` and ``error``).

        Returns:
            One description per input item (a list even for a single image).

        Raises:
            InvalidImageError: An input is not a usable image (``on_error="raise"``).
            DescriberError: An image could not be described (``on_error="raise"``).
        """
        check_on_error(on_error)
        batch = load_images(images, on_error=on_error, min_size=self.min_size)
        results: list[Description | None] = [None] * len(batch.names)
        for skipped in batch.skipped:
            results[skipped.index] = Description.failure(skipped.item, skipped.reason, self.model, self.prompt.id)
        good = [i for i, tensor in enumerate(batch.tensors) if tensor is not None]
        described = self.describe_tensors([batch.tensors[i] for i in good], [batch.names[i] for i in good])
        for index, description in zip(good, described):
            results[index] = description
        if on_error == "raise":
            for description in results:
                if description is not None and not description.ok:
                    raise DescriberError(description.item, description.error or "no description")
        return [d for d in results if d is not None]
