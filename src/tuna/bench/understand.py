"""Where does understanding fail, in what the representation carries or in what the decoder reads?
(`tuna bench diagnose --task understanding`)

Two measurements on ShapesBench:

- **answer surprisal**: −log p(answer | media, question), teacher-forced, per question kind, beside
  ln k, the surprisal of a uniform guess over the kind's k answers. A kind near ln k is not grounded
  (the decoder answers from the question alone); one above it is confidently wrong.
- **attribute probes**: a classifier per object attribute (shape, colour), fitted on the objects of
  train-split scenes and scored on test-split ones, reading (a) the VAE latent around the object (its
  cell and the eight around it) with an MLP and linearly, (b) the representation encoder's token at the
  object's cell, linearly — what the decoder reads, the connector being a small MLP on it — and (c) the
  same token from an untrained encoder of the same configuration. A high MLP (a) with linear (b) ≈ (c)
  says the latents carry the attribute and the trained encoder has not made it any easier to read than
  a random one does.
- **reading or binding**: the colour and shape answers' surprisal split by scene size. With one object
  in the scene the question needs only that object's attribute read; with several, the model must also
  find the object the question names. One far below chance and several near ln(objects) is a model that
  reads the attribute of whatever is there but does not bind it to the named object (a bag of colours).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from tuna.bench.items import QAItem
from tuna.data.shapes import palette
from tuna.data.shapes.scene import Scene
from tuna.data.shapes.text import RELATION_ANSWERS
from tuna.data.shapes.vqa import COUNTS
from tuna.model.encoder import RepresentationEncoder
from tuna.sequence import IGNORE, Text, build_batch

YES_NO = ("yes", "no")
ANSWER_SPACES: dict[str, tuple[str, ...]] = {
    "existence": YES_NO,
    "count": COUNTS,
    "color": tuple(palette.COLORS),
    "shape": palette.SHAPES,
    "position": tuple(RELATION_ANSWERS.values()),
    "direction": palette.DIRECTIONS,
    "moving_yes_no": YES_NO,
}
ATTRIBUTES: dict[str, tuple[str, ...]] = {"shape": palette.SHAPES, "color": tuple(palette.COLORS)}
SIZE_SPLIT_KINDS = ("color", "shape")  # one object: reading alone; several: reading and binding
SCENE_SIZES = ("one object", "several")
# (name in the table, features read, probe hidden width: 0 is linear). The MLP on the latent says whether
# the attribute is there at all; the linear probes say how easily a layer reading it can pick it up.
READERS: tuple[tuple[str, str, int], ...] = (
    ("latent (MLP)", "latent", 256),
    ("latent", "latent", 0),
    ("encoder", "encoder", 0),
    ("untrained encoder", "untrained encoder", 0),
)


@dataclass(frozen=True)
class UnderstandingDiagnosis:
    surprisal: dict[str, dict[str, tuple[float, int]]]  # task → kind → (mean nats, items)
    probes: dict[str, dict[str, float]]  # attribute → reader → test accuracy
    probe_objects: tuple[int, int]  # (train, test) objects the probes saw
    # task → kind → scene size ("one object" / "several") → (mean nats, items); colour and shape only
    by_scene_size: dict[str, dict[str, dict[str, tuple[float, int]]]] = field(default_factory=dict)

    def table(self) -> str:
        lines = []
        for task, kinds in self.surprisal.items():
            n = sum(count for _, count in kinds.values())
            lines.append(f"{task}: answer surprisal in nats over {n} test items (chance: ln k for k answers)")
            lines.extend(
                f"  {kind:<14} {nats:6.3f}  chance {math.log(len(ANSWER_SPACES[kind])):.3f}  ({count} items)"
                for kind, (nats, count) in kinds.items()
            )
            for kind, sizes in self.by_scene_size.get(task, {}).items():
                cells = "  ".join(f"{size} {nats:.3f} ({count})" for size, (nats, count) in sizes.items())
                lines.append(f"    {kind} by scene size: {cells}")
        train, test = self.probe_objects
        lines.append(
            f"attribute probes (linear unless marked): {train} train-split objects, {test} test-split"
        )
        for attribute, readers in self.probes.items():
            chance = 1 / len(ATTRIBUTES[attribute])
            cells = "  ".join(f"{reader} {acc:.3f}" for reader, acc in readers.items())
            lines.append(f"  {attribute:<6} {cells}  (chance {chance:.3f})")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------- surprisal


def qa_segments(pipe, item: QAItem):
    """The chat prompt the bench's `chat` builds for the item (`pipe.message_segments`: media first, then
    the question; a video at its own frame count), then the answer as the only supervised text."""
    kind, frames = ("video", len(item.media)) if isinstance(item.media, list) else ("image", None)
    content = [{"type": kind, kind: item.media}, {"type": "text", "text": item.question}]
    prompt = pipe.message_segments([{"role": "user", "content": content}], frames or pipe.cfg.video_frames)
    return [*prompt, Text(pipe.encode(item.answer), supervised=True)]


@torch.no_grad()
def answer_surprisal(pipe, items: Sequence[QAItem], batch_size: int = 8) -> list[float]:
    """−log p(answer tokens | prompt) for each item, summed over the answer's tokens (teacher-forced)."""
    model, out = pipe.model, []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        batch = build_batch([qa_segments(pipe, it) for it in chunk], pipe.cfg.tokens, pipe.cfg.vae)
        batch = batch.to(pipe.device)
        hidden = model.decoder(
            model.embed_clean(batch), batch.position_ids, model.attention_mask(batch.layout)
        )
        supervised = batch.targets != IGNORE  # (rows, L): one row per item, no packing
        logp = torch.log_softmax(model.decoder.logits(hidden[supervised]).float(), dim=-1)
        nll = -logp.gather(1, batch.targets[supervised][:, None])[:, 0]
        rows = supervised.nonzero()[:, 0]
        out += torch.zeros(len(chunk), device=nll.device).index_add_(0, rows, nll).tolist()
    return out


def surprisal_by_kind(
    pipe, items: Sequence[QAItem]
) -> tuple[dict[str, tuple[float, int]], dict[str, dict[str, tuple[float, int]]]]:
    """(kind → (mean nats, items), {colour, shape} → scene size → (mean nats, items))."""
    scored = [it for it in items if it.kind in ANSWER_SPACES]  # captions have no answer space
    nats = answer_surprisal(pipe, scored)
    by_kind: dict[str, list[float]] = defaultdict(list)
    by_size = {kind: {size: [] for size in SCENE_SIZES} for kind in SIZE_SPLIT_KINDS}
    for it, value in zip(scored, nats):
        by_kind[it.kind].append(value)
        if it.kind in by_size:
            by_size[it.kind][SCENE_SIZES[len(it.scene.objects) > 1]].append(value)
    return _means(by_kind), {kind: _means(sizes) for kind, sizes in by_size.items() if any(sizes.values())}


def _means(groups: dict[str, list[float]]) -> dict[str, tuple[float, int]]:
    """key → (mean, count) for each non-empty group, in the groups' order."""
    return {key: (sum(v) / len(v), len(v)) for key, v in groups.items() if v}


# ---------------------------------------------------------------------------------------- probes


def object_features(
    latents: torch.Tensor, tokens: dict[str, torch.Tensor], scenes: Sequence[Scene]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Per object of each scene: features by reader and labels by attribute.

    latents (n, C, 1, h, w); tokens: reader → (n, h·w, D) encoder outputs of the same latents.
    """
    h, w = latents.shape[-2:]
    padded = F.pad(latents[:, :, 0], (1, 1, 1, 1))  # (n, C, h + 2, w + 2): every cell has 8 neighbours
    feats: dict[str, list[torch.Tensor]] = defaultdict(list)
    labels: dict[str, list[int]] = defaultdict(list)
    for i, scene in enumerate(scenes):
        for obj in scene.objects:
            row, col = min(int(obj.y * h), h - 1), min(int(obj.x * w), w - 1)
            feats["latent"].append(padded[i, :, row : row + 3, col : col + 3].reshape(-1))
            for reader, t in tokens.items():
                feats[reader].append(t[i, row * w + col])
            for attribute, values in ATTRIBUTES.items():
                labels[attribute].append(values.index(getattr(obj, attribute)))
    return (
        {k: torch.stack(v).float() for k, v in feats.items()},
        {k: torch.tensor(v) for k, v in labels.items()},
    )


def probe_accuracy(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    hidden: int = 0,
    steps: int = 300,
) -> float:
    """Test accuracy of a softmax regression (hidden = 0) or a one-hidden-layer GELU MLP on standardised
    features (full-batch Adam, seeded)."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-5
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    classes = int(max(y_train.max(), y_test.max())) + 1
    with torch.random.fork_rng(), torch.enable_grad():  # seeded, leaving the caller's RNG as it was
        torch.manual_seed(0)
        probe = (
            torch.nn.Sequential(
                torch.nn.Linear(x_train.shape[1], hidden), torch.nn.GELU(), torch.nn.Linear(hidden, classes)
            )
            if hidden
            else torch.nn.Linear(x_train.shape[1], classes)
        )
        optimizer = torch.optim.Adam(probe.parameters(), lr=1e-2, weight_decay=1e-4)
        for _ in range(steps):
            loss = F.cross_entropy(probe(x_train), y_train)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return float((probe(x_test).argmax(1) == y_test).float().mean())


@torch.no_grad()
def attribute_probes(
    model, train: tuple[list, list[Scene]], test: tuple[list, list[Scene]], batch_size: int = 32
) -> tuple[dict[str, dict[str, float]], tuple[int, int]]:
    """(attribute → reader → accuracy, (train objects, test objects)); train/test: (visuals, scenes)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        untrained = RepresentationEncoder(model.cfg.encoder, model.cfg.latent_channels)
        untrained.init_weights()
    reference = next(model.encoder.parameters())
    untrained.to(reference.device, reference.dtype).eval()
    encoders = {"encoder": model.encoder, "untrained encoder": untrained}
    split = []
    for visuals, scenes in (train, test):
        latents = torch.cat(
            [
                torch.stack(model.encode_latents(visuals[i : i + batch_size]))
                for i in range(0, len(visuals), batch_size)
            ]
        )
        tokens = {name: enc(latents).cpu() for name, enc in encoders.items()}
        split.append(object_features(latents.cpu(), tokens, scenes))
    (train_x, train_y), (test_x, test_y) = split
    probes = {
        attribute: {
            name: probe_accuracy(train_x[feats], train_y[attribute], test_x[feats], test_y[attribute], hidden)
            for name, feats, hidden in READERS
        }
        for attribute in ATTRIBUTES
    }
    return probes, (len(train_y["shape"]), len(test_y["shape"]))
