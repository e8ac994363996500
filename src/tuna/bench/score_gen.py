"""Scoring generated images (GenEval-style spec checks) and generated videos (objects per frame, motion)."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from tuna.bench.detect import DetectedObject, Detection, detect
from tuna.data.shapes.geometry import direction_of, relations
from tuna.data.shapes.samples import VideoScene
from tuna.data.shapes.spec import GenSpec

# A tracked object must be seen over at least this share of the video, and travel at least this share of
# the distance the prompt's motion implies over that span, for its direction to count.
MIN_TRACK_SPAN = 0.5
MIN_MOTION_SHARE = 0.5


def _pixels(o: DetectedObject, det: Detection) -> tuple[float, float]:
    return (o.x * det.width, o.y * det.height)


def spec_satisfied(spec: GenSpec, det: Detection) -> bool:
    """Every requirement's count holds and, if asked, some pair of matching objects has the relation."""
    matches = [[o for o in det.objects if r.matches(o.shape, o.color)] for r in spec.objects]
    for req, found in zip(spec.objects, matches):
        if len(found) < req.count or (req.exact and len(found) != req.count):
            return False
    rel = spec.relation
    if rel is None:
        return True
    return any(
        rel.relation in relations(_pixels(a, det), a.side, _pixels(b, det), b.side)
        for a in matches[rel.a]
        for b in matches[rel.b]
        if a is not b
    )


def score_image(spec: GenSpec, image: Image.Image) -> float:
    return float(spec_satisfied(spec, detect(image)))


@dataclass(frozen=True)
class VideoScore:
    objects: float  # share of frames showing every prompted object
    motion: float  # share of prompted objects moving in their prompted direction

    @property
    def overall(self) -> float:
        return (self.objects + self.motion) / 2


def score_video(video: VideoScene, frames: list[Image.Image]) -> VideoScore:
    if not frames:
        return VideoScore(0.0, 0.0)
    dets = [detect(f) for f in frames]
    wanted = [o.combo for o in video.scene.objects]
    objects = sum(all(d.count(s, c) >= 1 for c, s in wanted) for d in dets) / len(dets)
    moved = 0
    last = len(frames) - 1
    for (color, shape), direction in zip(wanted, video.directions):
        track = [(i, o) for i, d in enumerate(dets) for o in d.objects if o.combo == (color, shape)]
        seen = sorted({i for i, _ in track})
        if last < 1 or len(seen) < 2 or seen[-1] - seen[0] < MIN_TRACK_SPAN * last:
            continue
        # With several look-alikes in a frame, follow the first one found; prompts never ask for duplicates.
        first = next(o for i, o in track if i == seen[0])
        end = next(o for i, o in track if i == seen[-1])
        d0 = dets[seen[0]]
        dx, dy = (end.x - first.x) * d0.width, (end.y - first.y) * d0.height
        need = MIN_MOTION_SHARE * video.distance * (seen[-1] - seen[0]) / last
        moved += direction_of(dx, dy, need) == direction
    return VideoScore(objects, moved / len(wanted) if wanted else 1.0)
