"""The shuffled stream training draws from: per-epoch permutations split among ranks, random backgrounds by
stream position, and endless batches through a DataLoader (deterministic whatever the worker count).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

if TYPE_CHECKING:
    from training.dataset import ImageLabelDataset

BACKGROUND_HIGH = 255  # random background colours are integers in [0, BACKGROUND_HIGH), as the official code


def epoch_order(n: int, epoch: int, seed: int) -> np.ndarray:
    """The permutation of ``range(n)`` used for ``epoch`` of the stream (from ``(seed, epoch)``)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def stream_background(seed: int, position: int) -> tuple[int, int, int]:
    """The background colour of the sample at ``position`` of the global stream (0..254 per channel)."""
    return tuple(int(c) for c in np.random.default_rng([seed, 0x6267, position]).integers(0, BACKGROUND_HIGH, 3))


def rank_stream(n: int, *, rank: int = 0, world_size: int = 1, seed: int = 0, start_index: int = 0
                ) -> Iterator[tuple[int, int]]:
    """``(entry, global position)`` pairs this rank draws, forever. Epoch e's permutation is split by stride:
    rank r takes its positions r, r + world_size, ... so ranks are disjoint and together cover each epoch.
    ``start_index`` skips the first samples of this rank's stream (resume)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
    if n < world_size:
        raise ValueError(f"{n} entries cannot be split among {world_size} ranks")
    if start_index < 0:
        raise ValueError(f"start_index must be >= 0, got {start_index}")
    per_epoch = len(range(rank, n, world_size))
    epoch, offset = divmod(start_index, per_epoch)
    while True:
        order = epoch_order(n, epoch, seed)
        for j in range(offset, per_epoch):
            p = rank + j * world_size
            yield int(order[p]), epoch * n + p
        epoch, offset = epoch + 1, 0


class _Batches:
    """Batch sampler of ``(entry, background)`` items for a DataLoader."""

    def __init__(self, stream: Iterator[tuple[int, int]], batch_size: int, seed: int, backgrounds: bool) -> None:
        self.stream, self.batch_size, self.seed, self.backgrounds = stream, batch_size, seed, backgrounds

    def __iter__(self):
        while True:
            batch = []
            for _ in range(self.batch_size):
                i, pos = next(self.stream)
                batch.append((i, stream_background(self.seed, pos) if self.backgrounds else None))
            yield batch


class _Loads(torch.utils.data.Dataset):
    def __init__(self, dataset: ImageLabelDataset) -> None:
        self.dataset = dataset

    def __getitem__(self, item: tuple[int, tuple[int, int, int] | None]):
        return self.dataset.load(*item)


def infinite_batches(dataset: ImageLabelDataset, batch_size: int, *, rank: int = 0, world_size: int = 1,
                     seed: int = 0, num_workers: int = 0, start_index: int = 0
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless ``(images uint8 [B, 3, H, W], labels float32 [B, 25])`` batches for one rank.

    A new permutation per epoch from ``(seed, epoch)``, split among ranks (:func:`rank_stream`); batches run
    across epoch ends. Masked images get the background :func:`stream_background` of their global position
    (white if ``random_background`` is off), so the stream depends only on the arguments, not on
    ``num_workers`` or timing. ``start_index`` = samples this rank already drew: a resumed run continues
    exactly where an uninterrupted one would be.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    stream = rank_stream(len(dataset), rank=rank, world_size=world_size, seed=seed, start_index=start_index)
    backgrounds = dataset.has_masks and dataset.options.random_background
    batches = _Batches(stream, batch_size, seed, backgrounds)
    yield from torch.utils.data.DataLoader(_Loads(dataset), batch_sampler=batches, num_workers=num_workers)


def sample_labels(dataset: ImageLabelDataset, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``[n, 25]`` labels of uniformly random entries: the generator's pose distribution (rebalanced by the
    index list and flipped, as the official code's fake labels)."""
    idx = torch.randint(len(dataset), (n,), generator=generator)
    return dataset.labels_at(idx)
