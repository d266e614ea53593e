"""``realness train``: train a CORE model on RAISE-TD or a CSV of rated images (the shipped recipe by default)."""

from __future__ import annotations

import argparse
import sys

from realness.training import TrainingConfig

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
    parser.add_argument("--config", default="lite", choices=("lite", "paper"), help="encoder configuration")
    parser.add_argument("--modalities", default="both", choices=("both", "image", "text"))
    parser.add_argument("--image-trainable", default="frozen", choices=("frozen", "last", "all"))
    parser.add_argument("--text-trainable", default="frozen", choices=("frozen", "last", "all"))
    parser.add_argument("--epochs", type=int, default=_RECIPE.epochs)
    parser.add_argument("--batch-size", type=int, default=_RECIPE.batch_size)
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
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", metavar="DIR", help="where the model, history and curve go (required unless --folds)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from realness.core import CoreConfig
    from realness.data import load_csv, load_raise_td
    from realness.runtime import resolve_device
    from realness.training import cross_validate, save_training_outputs, train_core

    if args.folds is None and not args.out:
        print("realness train: --out: required (where the trained model goes), unless --folds K", file=sys.stderr)
        return 2
    if args.folds is not None and args.folds < 2:
        print(f"realness train: --folds {args.folds}: needs at least 2 folds", file=sys.stderr)
        return 2
    resolve_device(args.device)  # a device this machine lacks fails before the data loads
    data = load_raise_td(args.raise_td, split="train") if args.raise_td else load_csv(args.csv, image_root=args.image_root)
    model_config = CoreConfig.preset(args.config)
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
        device=args.device,
    )
    if args.folds is not None:
        result = cross_validate(model_config, data.paths, data.mos, data.descriptions, folds=args.folds, config=config)
        for key, (mean, std) in result.summary().items():
            print(f"{key}\t{mean:.4f} ± {std:.4f}")
        return 0
    run_ = train_core(model_config, data.paths, data.mos, data.descriptions, config=config)
    save_training_outputs(run_, args.out, config=config)
    kept = run_.best_validation
    selection = (
        f"kept epoch {run_.best_epoch} (validation SROCC {kept['val_srocc']:.4f}, image-only {kept['val_srocc_image_only']:.4f})"
        if "val_srocc" in kept
        else f"trained on all {len(data)} images" + (f" for {run_.best_epoch} epochs" if model_config.head == "mlp" else "")
    )
    print(f"realness train: {selection} -> {args.out}", file=sys.stderr)
    return 0
