"""``realness train``: train a CORE model on RAISE-TD or a CSV of rated images."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a CORE model (paper recipe) on rated images",
        description="Train CORE with AdamW (lr 1e-4), MSE on MOS and flip/rotation/colour augmentation; "
        "the epoch with the best SROCC on a validation split carved from the training data is kept.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--raise-td", metavar="ROOT", help="RAISE-TD root; trains on its official train split")
    source.add_argument("--csv", metavar="FILE", help="CSV with image path, MOS and description columns")
    parser.add_argument("--image-root", help="directory the CSV's image paths are relative to")
    parser.add_argument("--config", default="lite", choices=("lite", "paper"), help="encoder configuration")
    parser.add_argument("--modalities", default="both", choices=("both", "image", "text"))
    parser.add_argument("--image-trainable", default="frozen", choices=("frozen", "last", "all"))
    parser.add_argument("--text-trainable", default="frozen", choices=("frozen", "last", "all"))
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--views", type=int, default=8, help="augmented views per image (frozen encoders)")
    parser.add_argument("--description-dropout", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", required=True, metavar="DIR", help="where the model, history and curve go")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from realness.core import CoreConfig
    from realness.data import load_csv, load_raise_td
    from realness.runtime import resolve_device
    from realness.training import TrainingConfig, save_training_outputs, train_core

    resolve_device(args.device)  # a device this machine lacks fails before the data loads
    data = load_raise_td(args.raise_td, split="train") if args.raise_td else load_csv(args.csv, image_root=args.image_root)
    model_config = CoreConfig.preset(args.config)
    model_config.modalities = args.modalities
    model_config.image_encoder.trainable = args.image_trainable
    model_config.text_encoder.trainable = args.text_trainable
    config = TrainingConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        augmented_views=args.views,
        description_dropout=args.description_dropout,
        seed=args.seed,
        device=args.device,
    )
    run_ = train_core(model_config, data.paths, data.mos, data.descriptions, config=config)
    save_training_outputs(run_, args.out, config=config)
    print(
        f"realness train: kept epoch {run_.best_epoch} (validation SROCC {run_.best_validation['val_srocc']:.4f}, "
        f"image-only {run_.best_validation['val_srocc_image_only']:.4f}) -> {args.out}",
        file=sys.stderr,
    )
    return 0
