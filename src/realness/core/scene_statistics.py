"""Natural-scene statistics of an image: what every camera photograph shares, whatever it shows.

BRISQUE / NIQE-style features (Mittal, Moorthy, Bovik 2012; 2013): the local mean-subtracted,
contrast-normalized (MSCN) luminance of a natural photograph is close to a unit Gaussian with
a characteristic heavy-tailed shape, and neighbouring MSCN values are correlated in a way that
flat frames, noise, stripes, smears and collages are not. The statistics of held-out real and
generated training images describe "looks like a scene"; :class:`realness.core.head.KernelRidgeHead`
measures how far an image is from them.

Computed on the image content at the encoder's scale (resized to fit ``size``, no padding),
at two scales, so a half-size copy of a photograph has about the statistics of the photograph.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Features per image (:func:`scene_statistics`).
DIM = 40
_EPSILON = 1.0 / 255.0


def _gaussian_window(sigma: float = 7 / 6) -> torch.Tensor:
    radius = 3
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def _smooth(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    pad = len(kernel) // 2
    x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    return F.conv2d(x, kernel.view(1, 1, -1, 1))


def _shape(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(E|x|^2 / E[x^2], E[x^4] / E[x^2]^2)``: a generalized Gaussian's shape, without the fit."""
    second = x.square().mean(dim=(-2, -1)).clamp_min(1e-8)
    return x.abs().mean(dim=(-2, -1)).square() / second, x.pow(4).mean(dim=(-2, -1)) / second.square()


def _upper_decile(x: torch.Tensor) -> torch.Tensor:
    flat = x.flatten(1)
    return flat.kthvalue(max(1, int(0.9 * flat.shape[1])), dim=1).values  # a selection, not a sort


def _one_scale(gray: torch.Tensor, kernel: torch.Tensor) -> list[torch.Tensor]:
    mean = _smooth(gray, kernel)
    sigma = (_smooth(gray * gray, kernel) - mean * mean).clamp_min(0).sqrt()
    mscn = (gray - mean) / (sigma + _EPSILON)
    rho, kurtosis = _shape(mscn)
    features = [mscn.square().mean(dim=(-2, -1)), rho, kurtosis.log()]
    for shifted in (mscn[..., :, 1:] * mscn[..., :, :-1], mscn[..., 1:, :] * mscn[..., :-1, :],
                    mscn[..., 1:, 1:] * mscn[..., :-1, :-1], mscn[..., 1:, :-1] * mscn[..., :-1, 1:]):
        rho_pair, kurtosis_pair = _shape(shifted)
        features += [shifted.mean(dim=(-2, -1)), rho_pair, kurtosis_pair.log()]
    # Local contrast: how much of the frame is flat, and how unevenly detail is spread (sharp subject, soft rest).
    contrast = sigma * 255.0
    features += [
        (contrast < 1.0).float().mean(dim=(-2, -1)),
        torch.log1p(contrast).mean(dim=(-2, -1)),
        torch.log1p(contrast).std(dim=(-2, -1)),
        torch.log1p(_upper_decile(contrast)),
    ]
    return features


@torch.no_grad()
def scene_statistics(images: torch.Tensor, size: tuple[int, int] = (384, 512)) -> torch.Tensor:
    """``B x DIM`` natural-scene statistics of ``B x 3 x H x W`` images in [0, 1] (or one ``3 x H x W``).

    Each image is first resized (antialiased) to fit ``size`` with its aspect ratio kept, as the
    encoder sees it, without the padding; images of different sizes go one at a time.
    """
    if images.dim() == 3:
        images = images.unsqueeze(0)
    height, width = images.shape[-2:]
    scale = min(size[0] / height, size[1] / width)
    target = (max(8, round(height * scale)), max(8, round(width * scale)))
    x = images.float()
    if (height, width) != target:
        x = F.interpolate(x, size=target, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    kernel = _gaussian_window().to(x.device)
    features = _one_scale(gray, kernel)
    features += _one_scale(F.avg_pool2d(gray, 2), kernel)
    # Colourfulness (Hasler and Suesstrunk 2003) and how much of it is fine-grained chroma noise.
    rg, yb = x[:, 0] - x[:, 1], 0.5 * (x[:, 0] + x[:, 1]) - x[:, 2]
    colourfulness = (rg.std(dim=(-2, -1)).square() + yb.std(dim=(-2, -1)).square()).sqrt() + 0.3 * (
        rg.mean(dim=(-2, -1)).square() + yb.mean(dim=(-2, -1)).square()).sqrt()
    chroma = torch.stack([rg, yb], 1)
    fine = (chroma - F.avg_pool2d(chroma, 3, 1, 1, count_include_pad=False)).abs().mean(dim=(1, 2, 3))
    features += [colourfulness, torch.log(fine + 1e-4) - torch.log(colourfulness + 1e-3)]
    stacked = torch.stack([f.reshape(len(x)) for f in features], dim=1)
    return torch.nan_to_num(stacked, nan=0.0, posinf=math.log(1e4), neginf=-math.log(1e4))
