"""Online Subclass Knowledge Distillation: a network pulls each sample toward its own subclass.

Tzelepi, Passalis & Tefas (2021), "Online Subclass Knowledge Distillation", Expert Systems with
Applications 181, 115132 (doi:10.1016/j.eswa.2021.115132).

The representation at ``representation`` (flattened to ``(B, D)``) of every training sample is kept in
a memory ``(N, D)`` refreshed by each batch. At the start of every epoch the stored features of each
class are L2-normalized and clustered by k-means into κ subclasses (a generator seeded by
``(seed, epoch)``, on its own stream), giving S = C·κ centroids m_j ``(S, D)``. A sample x_i of class c
belongs to the subclass s(i), the most similar centroid of class c. Our reading of the subclass
similarity loss, with cosine similarities and temperature τ, is a KL between two similarity
distributions over the S subclasses:

    q_i(j) = softmax_j(cos(f_i, m_j) / τ)            the sample's similarities to every subclass
    t_i(j) = softmax_j(cos(m_{s(i)}, m_j) / τ)       its subclass centre's similarities (soft labels)
    L = CE(y, p) + β · (1/B) Σ_i KL(t_i || q_i)

t_i peaks at the sample's own subclass, so the loss pulls f_i toward m_{s(i)} and away from the other
subclasses in proportion to how unlike its own they are: the soft labels come from the model itself,
online, with no teacher. Centroids and soft labels carry no gradient. During the first epoch the memory
fills and the subclass term is 0.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mentor.batch import Batch
from mentor.data.batches import epoch_generator
from mentor.errors import MentorError
from mentor.losses.functional import kl_divergence
from mentor.losses.objective import LossOutput
from mentor.schemes.base import SCHEMES, Scheme
from mentor.schemes.online.peers import check_count, probe
from mentor.taps import run_with_taps

CLUSTERING_STREAM = 0xC1A5  # random stream of the k-means starts (the loader uses streams 0, 1, ...)


def kmeans(points: torch.Tensor, clusters: int, generator: torch.Generator, iterations: int = 20) -> torch.Tensor:
    """Lloyd's k-means of ``points`` ``(n, D)`` from ``clusters`` <= n distinct random points; centroids ``(k, D)``."""
    start = torch.randperm(points.shape[0], generator=generator)[:clusters].to(points.device)
    centroids = points[start].clone()
    for _ in range(iterations):
        assignment = torch.cdist(points, centroids).argmin(dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, assignment, points)
        counts = torch.bincount(assignment, minlength=clusters).unsqueeze(1)
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)  # an empty cluster stays put
    return centroids


def subclass_similarity_loss(features: torch.Tensor, targets: torch.Tensor, centroids: torch.Tensor,
                             centroid_classes: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over samples of KL(t_i || q_i) (see the module docstring); samples of unclustered classes are skipped.

    Args:
        features: ``(B, D)``. targets: ``(B,)``. centroids: ``(S, D)``. centroid_classes: ``(S,)``.
    """
    centres = F.normalize(centroids, dim=1)
    similarities = F.normalize(features, dim=1) @ centres.T  # (B, S)
    own_class = targets.unsqueeze(1) == centroid_classes.unsqueeze(0)  # (B, S)
    clustered = own_class.any(dim=1)
    if not clustered.any():
        return features.sum() * 0.0
    subclass = similarities.detach().masked_fill(~own_class, -torch.inf).argmax(dim=1)
    soft_labels = F.softmax(centres[subclass] @ centres.T / temperature, dim=1)
    log_q = F.log_softmax(similarities / temperature, dim=1)
    return kl_divergence(log_q[clustered], soft_labels[clustered])


class FeatureMemory(nn.Module):
    """The latest representation and label of every training sample (buffers, so they are checkpointed)."""

    def __init__(self, size: int, dim: int, device: torch.device) -> None:
        super().__init__()
        self.register_buffer("features", torch.zeros(size, dim, device=device))
        self.register_buffer("labels", torch.zeros(size, dtype=torch.long, device=device))
        self.register_buffer("seen", torch.zeros(size, dtype=torch.bool, device=device))

    def store(self, indices: torch.Tensor, features: torch.Tensor, labels: torch.Tensor) -> None:
        self.features[indices] = features.detach().to(self.features.dtype)
        self.labels[indices], self.seen[indices] = labels, True


class OnlineSubclass(Scheme):
    """CE plus the subclass-similarity loss on the model's own clustered representation."""

    def __init__(self, model: nn.Module, representation: str, subclasses: int, temperature: float, weight: float,
                 seed: int) -> None:
        super().__init__()
        self.student, self.representation = model, representation
        self.subclasses, self.temperature, self.weight, self.seed = subclasses, temperature, weight, seed
        self.memory: FeatureMemory | None = None
        self.clustered_epoch = -1
        self.centroids: tuple[torch.Tensor, torch.Tensor] | None = None

    def _features(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, tapped = run_with_taps(self.student, inputs, (self.representation,), role="student")
        return logits, tapped[self.representation].flatten(1)

    def setup(self, batch: Batch) -> None:
        if batch.dataset_size is None:
            raise MentorError("oskd needs batches that know their dataset size (Batch.dataset_size)")
        if self.memory is None:
            features = probe(self.student, batch.inputs, (self.representation,)).features[self.representation]
            self.memory = FeatureMemory(batch.dataset_size, features[0].numel(), features.device)

    def trained(self) -> dict[str, nn.Module]:
        return {"student": self.student, **({"memory": self.memory} if self.memory is not None else {})}

    def predictors(self) -> dict[str, nn.Module]:
        return {"student": self.student}

    def cluster(self, epoch: int) -> None:
        """κ subclass centroids per class from the stored features (skipped while the memory is empty)."""
        memory, generator = self.memory, epoch_generator(self.seed, epoch, stream=CLUSTERING_STREAM)
        centroids, classes = [], []
        for label in torch.unique(memory.labels[memory.seen]).tolist():
            points = F.normalize(memory.features[memory.seen & (memory.labels == label)], dim=1)
            found = kmeans(points, min(self.subclasses, points.shape[0]), generator)
            centroids.append(found)
            classes.append(torch.full((found.shape[0],), label, device=found.device))
        self.centroids = (torch.cat(centroids), torch.cat(classes)) if centroids else None
        self.clustered_epoch = epoch

    def loss(self, batch: Batch, epoch: float, epochs: int) -> LossOutput:
        if batch.indices is None:
            raise MentorError("oskd needs batches with sample indices (Batch.indices) to keep its feature memory")
        if self.memory is None:
            self.setup(batch)
        if int(epoch) != self.clustered_epoch:
            self.cluster(int(epoch))
        logits, features = self._features(batch.inputs)
        parts = {"ce": F.cross_entropy(logits, batch.targets), "subclass": logits.new_zeros(())}
        if self.centroids is not None:
            subclass = subclass_similarity_loss(features, batch.targets, *self.centroids, self.temperature)
            parts["subclass"] = self.weight * subclass
        self.memory.store(batch.indices.to(features.device), features, batch.targets)
        return LossOutput.of(parts)


@SCHEMES.register("oskd", "Tzelepi, Passalis & Tefas 2021, Online Subclass Knowledge Distillation (ESWA)")
def oskd(
    models: list[nn.Module],
    representation: Annotated[str, Field(min_length=1)] = "flatten",
    subclasses: Annotated[int, Field(ge=1)] = 2,
    temperature: Annotated[float, Field(gt=0)] = 0.2,
    weight: Annotated[float, Field(ge=0)] = 1.0,
    seed: int = 0,
) -> OnlineSubclass:
    """``models`` = [the network]; ``representation``: the module path whose output is clustered."""
    check_count(models, "oskd", 1, 1)
    return OnlineSubclass(models[0], representation, subclasses, temperature, weight, seed)
