"""Joint (A, B) augmentation of training batches, on the batches' own device.

Inputs and outputs are float tensors ``a [N, Ca, H, W]``, ``b [N, Cb, H, W]`` (normalised,
Ca and Cb may differ). One kornia ``AugmentationSequential`` samples the geometry once per
sample and applies it to both sides: image sides are resampled bilinearly, label sides with
nearest neighbour, so labels keep exactly their value set. Borders that a rotation or affine
uncovers are filled by reflection (never with a value that is not in the data).

Geometry (``AugmentConfig``): ``jitter`` = the paper's resize by ``jitter_scale`` and random
crop back to H x W (an affine scale by ``jitter_scale`` plus a uniform shift of at most the
margin, which is the same map); ``flip`` = horizontal mirror with p = 0.5; ``rot90`` = k * 90
degrees, k uniform in 0..3 (square patches only; other shapes get k in {0, 2}); ``affine`` =
small rotation (+-10 degrees), scale (0.9..1.1) and shear (+-5 degrees) with p = 0.5.
Intensity (``intensity``, A only and never on labels): per-sample brightness (+-0.1),
contrast (x 0.8..1.2) and gamma (0.8..1.25), all monotonic, applied on (a + 1) / 2 without
clipping (gamma as sign(t) * |t| ** g). Randomness comes from torch's global RNG (kornia's).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import AugmentConfig


class PairAugment(nn.Module):
    """``forward(a, b) -> (a, b)`` with identical random geometry for A and B (see module doc)."""

    def __init__(self, config: AugmentConfig | None = None, b_is_labels: bool = False, a_is_labels: bool = False):
        super().__init__()
        import kornia.augmentation as K

        self.config = config or AugmentConfig()
        self.a_is_labels, self.b_is_labels = bool(a_is_labels), bool(b_is_labels)
        cfg = self.config
        steps = []
        if cfg.jitter and cfg.jitter_scale > 1:
            s = float(cfg.jitter_scale)
            margin = (s - 1) / 2
            steps.append(K.RandomAffine(degrees=0.0, translate=(margin, margin), scale=(s, s),
                                        padding_mode="reflection", align_corners=False, p=1.0))
        if cfg.flip:
            steps.append(K.RandomHorizontalFlip(p=0.5))
        if cfg.affine:
            steps.append(K.RandomAffine(degrees=10.0, scale=(0.9, 1.1), shear=5.0,
                                        padding_mode="reflection", align_corners=False, p=0.5))
        self._geometry = K.AugmentationSequential(*steps, data_keys=["input", "mask"]) if steps else None
        self._rot_square = K.AugmentationSequential(K.RandomRotation90(times=(0, 3), p=1.0, align_corners=True),
                                                    data_keys=["input", "mask"]) if cfg.rot90 else None
        self._brightness = K.RandomBrightness(brightness=(0.9, 1.1), clip_output=False, p=1.0)
        self._contrast = K.RandomContrast(contrast=(0.8, 1.2), clip_output=False, p=1.0)

    def _rotate(self, img: torch.Tensor, lab: torch.Tensor):
        if img.shape[-1] == img.shape[-2]:
            return self._rot_square(img, lab)
        # non-square: only 0 or 180 degrees keep the shape (two flips)
        turn = torch.rand(img.shape[0], device=img.device) < 0.5
        img = torch.where(turn[:, None, None, None], img.flip(-1, -2), img)
        lab = torch.where(turn[:, None, None, None], lab.flip(-1, -2), lab)
        return img, lab

    def _intensity(self, a: torch.Tensor) -> torch.Tensor:
        t = (a + 1) / 2
        t = self._contrast(self._brightness(t))
        g = torch.empty(a.shape[0], 1, 1, 1, device=a.device, dtype=a.dtype).uniform_(0.8, 1.25)
        t = torch.sign(t) * t.abs().pow(g)
        return t * 2 - 1

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if a.ndim != 4 or b.ndim != 4 or a.shape[0] != b.shape[0] or a.shape[-2:] != b.shape[-2:]:
            raise ValueError("PairAugment needs a [N, Ca, H, W] and b [N, Cb, H, W] of one size; "
                             f"got {list(a.shape)}, {list(b.shape)}")
        ca = a.shape[1]
        img_parts = ([] if self.a_is_labels else [a]) + ([] if self.b_is_labels else [b])
        lab_parts = ([a] if self.a_is_labels else []) + ([b] if self.b_is_labels else [])
        n, _, h, w = a.shape
        img = torch.cat(img_parts, 1) if img_parts else a.new_zeros(n, 1, h, w)
        lab = torch.cat(lab_parts, 1) if lab_parts else a.new_zeros(n, 1, h, w)
        if self._geometry is not None:
            img, lab = self._geometry(img, lab)
        if self._rot_square is not None:
            img, lab = self._rotate(img, lab)
        if self.a_is_labels:
            a_out = lab[:, :ca]
            lab = lab[:, ca:]
        else:
            a_out = img[:, :ca]
            img = img[:, ca:]
        b_out = lab[:, : b.shape[1]] if self.b_is_labels else img[:, : b.shape[1]]
        if self.config.intensity and not self.a_is_labels:
            a_out = self._intensity(a_out)
        return a_out.contiguous(), b_out.contiguous()
