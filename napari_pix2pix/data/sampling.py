"""Random training patches and a fixed validation set, drawn from a PairedDataset.

All tensors are CPU float32, channel-first: ``a`` ``[B, Ca, p, p]``, ``b`` ``[B, Cb, p, p]``
(normalised as in the dataset). Every random number comes from the ``torch.Generator`` passed
to :meth:`PatchSampler.sample`, and each call consumes a fixed amount of it (independent of
the image content), so saving ``generator.get_state()`` and restoring it resumes exactly.

Distributed training: every rank uses the SAME generator seed; each call draws
``world_size * batch_size`` samples and rank ``r`` keeps samples ``r*B .. (r+1)*B - 1``. The
generator states therefore stay identical on all ranks (one saved state resumes all of them)
and ranks never see the same draw.
"""

from __future__ import annotations

import numpy as np
import torch

from .sources import PairedDataset

_REDRAWS = 10
_MIN_FOREGROUND = 0.01


def _pad_to(x: np.ndarray, p: int) -> np.ndarray:
    """Pad ``[C, H, W]`` to at least ``p`` x ``p`` (centered): reflect when the image is large
    enough for it, otherwise replicate the edge."""
    h, w = x.shape[-2:]
    ph, pw = max(0, p - h), max(0, p - w)
    if not ph and not pw:
        return x
    pad = ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
    mode = "reflect" if ph < h and pw < w else "edge"
    return np.pad(x, pad, mode=mode)


def foreground_mask(dataset: PairedDataset, index: int) -> np.ndarray:
    """Boolean ``[H, W]`` foreground of one pair, on the labels side when there is one
    (B first): label > 0. With no labels side, B intensity (mean over channels) above
    ``median + 0.25 * (99th percentile - median)`` of that pair's B image."""
    pair = dataset.pairs[index]
    for side in ("b", "a"):
        if getattr(dataset, f"{side}_is_labels"):
            raw = getattr(pair, f"raw_{side}")
            if raw is not None:
                return np.asarray(raw[0]) > 0
            y = getattr(pair, side)
            norm = getattr(dataset, f"norm_{side}")
            if norm.label_encoding == "onehot":
                return np.argmax(y, axis=0) > 0
            return y[0] > -1 + 1e-6
    y = np.asarray(pair.b, dtype=np.float32).mean(axis=0)
    med, top = np.percentile(y, [50, 99])
    return y > med + 0.25 * (top - med)


class PatchSampler:
    """Random ``patch_size`` crops of the dataset's pairs, identical positions for A and B.

    Pairs are picked with probability proportional to their area, crop positions uniformly.
    Pairs smaller than the patch are padded (see :func:`_pad_to`). With probability
    ``foreground_bias`` a sample is re-drawn (new pair and position) up to 10 times until at
    least 1 % of its pixels (and at least one) are foreground (see :func:`foreground_mask`);
    if none of the 10 has enough, the first draw is used.
    """

    def __init__(self, dataset: PairedDataset, patch_size: int, batch_size: int, foreground_bias: float = 0.0,
                 rank: int = 0, world_size: int = 1):
        if len(dataset) == 0:
            raise ValueError("PatchSampler needs a non-empty dataset")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        self.dataset = dataset
        self.patch_size = int(patch_size)
        self.batch_size = int(batch_size)
        self.foreground_bias = float(foreground_bias)
        self.rank, self.world_size = int(rank), int(world_size)
        p = self.patch_size
        self._a = [torch.from_numpy(np.ascontiguousarray(_pad_to(pr.a, p), dtype=np.float32)) for pr in dataset.pairs]
        self._b = [torch.from_numpy(np.ascontiguousarray(_pad_to(pr.b, p), dtype=np.float32)) for pr in dataset.pairs]
        self._weights = torch.tensor([float(pr.shape[0] * pr.shape[1]) for pr in dataset.pairs], dtype=torch.float64)
        self._sat = None
        if self.foreground_bias > 0:
            self._sat = []
            for i in range(len(dataset)):
                fg = _pad_to(foreground_mask(dataset, i)[None].astype(np.int64), p)[0]
                sat = np.zeros((fg.shape[0] + 1, fg.shape[1] + 1), np.int64)
                sat[1:, 1:] = fg.cumsum(0).cumsum(1)
                self._sat.append(sat)

    def _fg_count(self, i: int, y: int, x: int) -> int:
        s, p = self._sat[i], self.patch_size
        return int(s[y + p, x + p] - s[y, x + p] - s[y + p, x] + s[y, x])

    def sample(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch ``(a [B, Ca, p, p], b [B, Cb, p, p])`` for this rank, using only ``generator``."""
        n = self.world_size * self.batch_size
        k = 1 + _REDRAWS if self.foreground_bias > 0 else 1
        idx = torch.multinomial(self._weights, n * k, replacement=True, generator=generator).view(n, k)
        pos = torch.rand((n, k, 2), generator=generator, dtype=torch.float64)
        coin = torch.rand((n,), generator=generator, dtype=torch.float64)
        p = self.patch_size
        need = max(1, int(np.ceil(_MIN_FOREGROUND * p * p)))
        out_a, out_b = [], []
        for s in range(self.rank * self.batch_size, (self.rank + 1) * self.batch_size):
            choice = None
            first = None
            for j in range(k):
                i = int(idx[s, j])
                h, w = self._a[i].shape[-2:]
                y = min(int(pos[s, j, 0] * (h - p + 1)), h - p)
                x = min(int(pos[s, j, 1] * (w - p + 1)), w - p)
                if first is None:
                    first = (i, y, x)
                    if not (k > 1 and float(coin[s]) < self.foreground_bias):
                        break
                if self._fg_count(i, y, x) >= need:
                    choice = (i, y, x)
                    break
            i, y, x = choice or first
            out_a.append(self._a[i][:, y:y + p, x:x + p])
            out_b.append(self._b[i][:, y:y + p, x:x + p])
        return torch.stack(out_a), torch.stack(out_b)


def validation_patches(dataset: PairedDataset, patch_size: int,
                       max_patches: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, deterministic set of at most ``max_patches`` crops ``(a [N, Ca, p, p], b [N, Cb, p, p])``.

    Every pair is covered by a grid of ``p`` x ``p`` tiles (evenly spaced, the last one flush
    with the border; small pairs padded); from all tiles in pair order, ``max_patches``
    evenly spaced ones are taken (all of them when there are fewer).
    """
    p = int(patch_size)
    tiles = []
    for i, pair in enumerate(dataset.pairs):
        h, w = pair.shape
        hp, wp = max(h, p), max(w, p)
        ys = np.linspace(0, hp - p, int(np.ceil(hp / p))).round().astype(int)
        xs = np.linspace(0, wp - p, int(np.ceil(wp / p))).round().astype(int)
        tiles.extend((i, int(y), int(x)) for y in ys for x in xs)
    if not tiles:
        raise ValueError("validation_patches needs a non-empty dataset")
    if len(tiles) > max_patches:
        pick = np.linspace(0, len(tiles) - 1, max_patches).round().astype(int)
        tiles = [tiles[j] for j in pick]
    out_a, out_b = [], []
    for i, y, x in tiles:
        pair = dataset.pairs[i]
        a, b = _pad_to(pair.a, p), _pad_to(pair.b, p)
        out_a.append(torch.from_numpy(np.ascontiguousarray(a[:, y:y + p, x:x + p], dtype=np.float32)))
        out_b.append(torch.from_numpy(np.ascontiguousarray(b[:, y:y + p, x:x + p], dtype=np.float32)))
    return torch.stack(out_a), torch.stack(out_b)
