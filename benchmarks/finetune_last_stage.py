"""Does fine-tuning EfficientNet-Lite0's last stage beat the frozen encoder? 5-fold CV on RAISE-TD's training split.

    python benchmarks/finetune_last_stage.py [--root ../shared/datasets/raise-td] [--epochs 20]

The shipped recipe (``TrainingConfig()``: the image, its mirror and one degraded copy per
family, a kernel ridge head) is run twice per fold, on the same folds as ``realness train
--folds 5``: once on the frozen encoder's features, once on features from a copy of the last
stage (last block, head convolution and its BatchNorm) fine-tuned on that fold's training part
only. What comes before the last stage never changes, so its output is computed once per view
and cached; each fold then trains the last stage alone (MSE on MOS from a linear read-out, plus
a hinge that ranks each degraded copy below its source). Only the training split is read;
results go to benchmarks/results/finetune_last_stage.{json,md} after every fold.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import numpy as np
import torch
from reporting import write_results
from torch import nn
from tqdm import tqdm

from realness.core import CoreConfig, CoreModel
from realness.data import load_raise_td
from realness.data.raise_td import raise_td_root
from realness.data.splits import kfold
from realness.io.inputs import load_image
from realness.training.cross_validation import fit_and_score_fold  # noqa: E402
from realness.training.degrade import random_degradation
from realness.training.trainer import FrozenFeatures, TrainingConfig

RESULTS = "benchmarks/results"


def before_last_stage(encoder, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The last stage's input and the early-stage statistics (what the encoder appends to its pooled head)."""
    net = encoder.net
    x = net._swish(net._bn0(net._conv_stem(pixels)))
    taps = {encoder.stage_ends[level]: level for level in encoder.levels}
    tapped = {}
    for index, block in enumerate(net._blocks[:-1]):
        x = block(x)
        if index in taps:
            tapped[taps[index]] = x
    stats = []
    for level in encoder.levels:
        feature = tapped[level].flatten(2)
        stats.extend([feature.mean(-1), feature.std(-1)])
    return x, torch.cat(stats, dim=1)


class LastStage(nn.Module):
    """A trainable copy of the encoder's last block, head convolution and BatchNorm."""

    def __init__(self, encoder):
        super().__init__()
        net = encoder.net
        self.block, self.conv_head, self.bn1, self.swish = (copy.deepcopy(m) for m in (net._blocks[-1], net._conv_head, net._bn1, net._swish))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.swish(self.bn1(self.conv_head(self.block(x)))).mean(dim=(2, 3))


@torch.inference_mode()
def cache_views(model: CoreModel, paths, config: TrainingConfig):
    """Per view (image, augmented views, one degraded copy per family, seeded as the trainer does): last-stage input and statistics."""
    encoder, views = model.image_encoder, max(1, config.augmented_views)
    generator = torch.Generator().manual_seed(config.seed)
    inputs, stats = [], []
    for path in tqdm(paths, desc="cache views", file=sys.stderr):
        decoded = load_image(path, min_size=encoder.config.min_size)
        shown = [decoded] + [config.augmentation(decoded, generator) for _ in range(views - 1)]
        shown += [random_degradation(decoded, family, generator) for family in config.degradations]
        x, s = before_last_stage(encoder, torch.stack([encoder.preprocess(view) for view in shown]))
        inputs.append(x.half())
        stats.append(s)
    return torch.stack(inputs, dim=1), torch.stack(stats, dim=1)  # views x N x C x H x W, views x N x D


@torch.inference_mode()
def image_features(stage: LastStage, inputs: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
    stage.eval()
    rows = [torch.cat([stage(inputs[v, i : i + 64].float()), stats[v, i : i + 64]], dim=1)
            for v in range(inputs.shape[0]) for i in range(0, inputs.shape[1], 64)]
    return torch.cat(rows).reshape(inputs.shape[0], inputs.shape[1], -1)


def fine_tune(stage: LastStage, inputs, stats, mos, train_idx, config: TrainingConfig, *, epochs: int, seed: int) -> LastStage:
    """Train the last stage (BatchNorm statistics frozen) through a linear read-out of MOS, with the degradation hinge."""
    torch.manual_seed(seed)
    views = max(1, config.augmented_views)
    features = image_features(stage, inputs[:, train_idx], stats[:, train_idx])
    mean, std = features[0].mean(0).clone(), features[0].std(0).clone() + 1e-6
    readout = nn.Linear(features.shape[-1], 1)
    targets = torch.as_tensor(mos[train_idx], dtype=torch.float32)
    optimizer = torch.optim.AdamW(
        [{"params": stage.parameters(), "lr": 1e-4}, {"params": readout.parameters(), "lr": 1e-3}], weight_decay=1e-2
    )
    stage.requires_grad_(True)  # the copy keeps the frozen encoder's requires_grad=False
    stage.eval()  # BatchNorm keeps its ImageNet running statistics: batches of 32 are too small to re-estimate them
    order = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(epochs), desc="fine-tune", file=sys.stderr, leave=False):
        for batch in torch.randperm(len(train_idx), generator=order).split(32):
            view = torch.randint(0, views, (len(batch),), generator=order)
            family = torch.randint(views, inputs.shape[0], (len(batch),), generator=order)
            index = torch.as_tensor(train_idx)[batch]
            clean_in, degraded_in = inputs[view, index].float(), inputs[family, index].float()
            clean = readout((torch.cat([stage(clean_in), stats[view, index]], 1) - mean) / std).squeeze(1)
            degraded = readout((torch.cat([stage(degraded_in), stats[family, index]], 1) - mean) / std).squeeze(1)
            loss = nn.functional.mse_loss(clean, targets[batch])
            loss = loss + config.rank_weight * torch.relu(degraded - clean.detach() + config.rank_margin).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return stage


def evaluate_fold(model, features: FrozenFeatures, mos, texts, train_idx, held_idx, config) -> dict[str, float]:
    """The library's CV fold (the shipped recipe's head on the training part), with the degraded-lower shares averaged over the families."""
    fold = fit_and_score_fold(CoreConfig.lite(), features, mos, texts, train_idx, held_idx, config=config, encoders_from=model)
    result = {key: value for key, value in fold.items() if not key.startswith("lower_")}
    for suffix in ("", "_image_only"):
        result["degraded_lower" + suffix] = float(np.mean([fold[f"lower_{family}{suffix}"] for family in config.degradations]))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=None, help="RAISE-TD root (default: $REALNESS_RAISE_TD or ../shared/datasets/raise-td)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="first N training images only (a smoke run; results not written)")
    args = parser.parse_args()

    started = time.time()
    data = load_raise_td(str(raise_td_root(args.root)), split="train")
    paths, mos, texts = data.paths[: args.limit], data.mos[: args.limit], data.descriptions[: args.limit]
    config = TrainingConfig()
    mos = np.asarray(mos, dtype=np.float32)
    texts = [text or "" for text in texts]
    model = CoreModel(CoreConfig.lite()).eval()
    inputs, stats = (cached.clone() for cached in cache_views(model, paths, config))  # out of inference mode: trainable inputs
    with torch.inference_mode():
        unique = sorted(set(texts) | {""})
        table = torch.cat([model.encode_texts(unique[i : i + 64]).float() for i in range(0, len(unique), 64)])
        row = {text: i for i, text in enumerate(unique)}
        text_features, empty_text = table[[row[t] for t in texts]], table[row[""]]
        # The cache reproduces the encoder: its features of the first image equal a direct forward pass.
        direct = model.image_encoder(model.image_encoder.preprocess(load_image(paths[0], min_size=model.image_encoder.config.min_size))[None])
    views = max(1, config.augmented_views)

    def frozen_features(stage: LastStage) -> FrozenFeatures:
        image = image_features(stage, inputs, stats)
        return FrozenFeatures(image[:views], text_features, empty_text, image[views:], tuple(config.degradations))

    baseline = frozen_features(LastStage(model.image_encoder))
    gap = float((baseline.image[0, 0] - direct[0]).abs().max())
    assert gap < 1e-2, f"cached features differ from the encoder's by {gap}"
    rows = []
    for number, (train_idx, held_idx) in enumerate(kfold(len(mos), args.folds, seed=config.seed), start=1):
        train_idx, held_idx = [int(i) for i in train_idx], [int(i) for i in held_idx]
        frozen = evaluate_fold(model, baseline, mos, texts, train_idx, held_idx, config)
        stage = fine_tune(LastStage(model.image_encoder), inputs, stats, mos, train_idx, config, epochs=args.epochs, seed=number)
        tuned = evaluate_fold(model, frozen_features(stage), mos, texts, train_idx, held_idx, config)
        for name, result in (("frozen (shipped recipe)", frozen), (f"last stage fine-tuned ({args.epochs} epochs)", tuned)):
            rows.append({"fold": number, "encoder": name, **{k: round(v, 4) for k, v in result.items()}})
        print(f"fold {number}: SROCC frozen {frozen['srocc']:.4f} -> fine-tuned {tuned['srocc']:.4f}", file=sys.stderr)
        if args.limit is not None:
            continue
        summary = _summary(rows)
        write_results(
            RESULTS, "finetune_last_stage",
            {"columns": list(rows[0]), "rows": summary + rows, "folds_done": number, "minutes": round((time.time() - started) / 60, 1)},
            command=f"python benchmarks/finetune_last_stage.py --epochs {args.epochs} --folds {args.folds}",
            hardware="2-core CPU VM",
        )
    return 0


def _summary(rows: list[dict]) -> list[dict]:
    """Mean ± std over the folds done, per encoder."""
    out = []
    for name in dict.fromkeys(row["encoder"] for row in rows):
        mine = [row for row in rows if row["encoder"] == name]
        entry = {"fold": f"mean ± std ({len(mine)} folds)", "encoder": name}
        for key in (k for k in mine[0] if k not in ("fold", "encoder")):
            values = np.asarray([row[key] for row in mine], dtype=float)
            entry[key] = f"{values.mean():.4f} ± {values.std(ddof=1) if len(values) > 1 else 0:.4f}"
        out.append(entry)
    return out


if __name__ == "__main__":
    sys.exit(main())
