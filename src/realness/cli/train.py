"""``realness train``: train a CORE model on RAISE-TD or a CSV of rated images (the shipped recipe by default)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from realness.cli.common import (
    add_describer_argument,
    add_descriptions_arguments,
    add_runtime_arguments,
    build_describer_from_args,
    check_batch_size,
    match_descriptions,
    show_progress,
)
from realness.core import CoreConfig
from realness.core.head import head_class
from realness.core.model import read_config
from realness.core.pretrained import CONFIG_NAME, resolve_core_dir
from realness.data import load_csv, load_raise_td
from realness.describers.descriptions import fill_missing
from realness.errors import UsageError
from realness.runtime.device import resolve_device
from realness.training.cross_validation import cross_validate
from realness.training.trainer import TrainingConfig, save_training_outputs, train_core

_RECIPE = TrainingConfig()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a CORE model on rated images (the shipped recipe unless told otherwise)",
        description="Train CORE with the recipe the bundled model was trained with: frozen encoders, AdamW, MSE on "
        "MOS, flip augmentation, description dropout and a ranking term that scores blurred, noisy, "
        "JPEG-compressed and downscaled copies below their source. --folds K cross-validates the recipe instead.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--raise-td", metavar="ROOT", help="RAISE-TD root; trains on its official train split")
    source.add_argument("--csv", metavar="FILE", help="CSV with image path, MOS and description columns")
    parser.add_argument("--image-root", help="directory the CSV's image paths are relative to")
    architecture = parser.add_mutually_exclusive_group()
    architecture.add_argument("--config", default=None, choices=("lite", "paper"),
                              help="encoders and head: lite (the bundled model's, default) or paper (ResNet-50 + BERT-base, MLP)")
    architecture.add_argument("--model", metavar="NAME|DIR",
                              help="train a model with this model's encoders and head (realness-core-lite, hf-hub:ORG/REPO "
                              "or a directory); its head is trained afresh")
    add_descriptions_arguments(
        parser, help="descriptions to train with instead of the dataset's own, for the images the table lists"
    )
    add_describer_argument(parser)
    parser.add_argument("--modalities", default="both", choices=("both", "image", "text"))
    parser.add_argument("--image-trainable", default="frozen", choices=("frozen", "last", "all"),
                        help="fine-tune the image encoder's last stage or all of it (MLP head: --config paper)")
    parser.add_argument("--text-trainable", default="frozen", choices=("frozen", "last", "all"),
                        help="tune the text encoder's last layer or all of it (any head; docs/training.md)")
    parser.add_argument("--epochs", type=int, default=_RECIPE.epochs)
    parser.add_argument("--lr", type=float, default=_RECIPE.learning_rate)
    parser.add_argument("--views", type=int, default=_RECIPE.augmented_views, help="augmented views per image (frozen encoders)")
    parser.add_argument("--description-dropout", type=float, default=_RECIPE.description_dropout)
    parser.add_argument("--rank-weight", type=float, default=_RECIPE.rank_weight,
                        help="weight of the term ranking degraded copies below their source (0: off)")
    parser.add_argument("--validation-fraction", type=float, default=_RECIPE.validation_fraction,
                        help="hold out this share to keep the best epoch (default 0: train on all for --epochs)")
    parser.add_argument("--folds", type=int, metavar="K",
                        help="cross-validate the recipe over K folds of the data and print per-fold and mean "
                        "SROCC/PLCC (with descriptions and image-only) instead of training one model")
    parser.add_argument("--seed", type=int, default=_RECIPE.seed)
    add_runtime_arguments(parser, batch_default=_RECIPE.batch_size, batch_help="images per optimizer step (MLP head)")
    parser.add_argument("--out", metavar="DIR", help="the model directory: model, history and curve (required unless --folds)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.folds is None and not args.out:
        raise UsageError("--out", "required (where the trained model goes), unless --folds K")
    if args.folds is not None and args.folds < 2:
        raise UsageError(f"--folds {args.folds}", "needs at least 2 folds")
    check_batch_size(args)
    device = str(resolve_device(args.device))  # a device this machine lacks fails before the data loads
    if args.model:
        model_config = read_config(resolve_core_dir(args.model) / CONFIG_NAME)
    else:
        model_config = CoreConfig.preset(args.config or "lite")
    head = head_class(model_config.head)
    if head.closed_form and args.image_trainable != "frozen":
        raise UsageError(f"--image-trainable {args.image_trainable}",
                         f"a {head.name} head is fitted over frozen image features; fine-tune with --config paper (MLP head)")
    data = load_raise_td(args.raise_td, split="train") if args.raise_td else load_csv(args.csv, image_root=args.image_root)
    texts = list(data.descriptions)
    given = match_descriptions("train", args, data.paths)
    if given is not None:
        texts = [new or old for new, old in zip(given, texts)]
    describer = build_describer_from_args(args)
    if describer is not None:
        missing = [text or None for text in texts]
        for failure in fill_missing(describer, data.paths, [str(p) for p in data.paths], missing, on_error="skip"):
            print(f"realness train: {failure.item}: trains without a description ({failure.reason})", file=sys.stderr)
        texts = missing
    model_config.modalities = args.modalities
    model_config.image_encoder.trainable = args.image_trainable
    model_config.text_encoder.trainable = args.text_trainable
    config = dataclasses.replace(
        _RECIPE,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        augmented_views=args.views,
        description_dropout=args.description_dropout,
        rank_weight=args.rank_weight,
        degradations=_RECIPE.degradations if args.rank_weight > 0 else (),
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        device=device,
        precision=args.precision,
    )
    progress = show_progress(args) is not False
    if args.folds is not None:
        result = cross_validate(model_config, data.paths, data.mos, texts, folds=args.folds, config=config, progress=progress)
        for key, (mean, std) in result.summary().items():
            print(f"{key}\t{mean:.4f} ± {std:.4f}")
        return 0
    run_ = train_core(model_config, data.paths, data.mos, texts, config=config, progress=progress)
    save_training_outputs(run_, args.out, config=config)
    kept = run_.best_validation
    selection = (
        f"kept epoch {run_.best_epoch} (validation SROCC {kept['val_srocc']:.4f}, image-only {kept['val_srocc_image_only']:.4f})"
        if "val_srocc" in kept
        else f"trained on all {len(data)} images" + (f" for {run_.best_epoch} epochs" if not head.closed_form else "")
    )
    print(f"realness train: {selection} -> {args.out}", file=sys.stderr)
    return 0
