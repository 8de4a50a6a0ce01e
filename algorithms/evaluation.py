"""Offline evaluation of a feed with a yardstick from outside the embedding space.

A feed that searches embeddings is flattered by viewers whose likes are defined by the same
embeddings (the neighbours of a seed video): it only has to find what it already measures. Here
a viewer's taste is a set of catalog videos named by metadata alone, which the feed never
reads as such:

- a hashtag topic: a content hashtag merged with the hashtags that mostly occur on the same
  videos (#fitness, #workout, #powerlifting... are one taste), or
- a creator: every video of one account.

Reach hashtags (#fyp, #viral...) say who a video was posted for, not what it is about, so they
are never tastes (``REACH_HASHTAGS``); nor is any tag on more than ``max_share`` of the catalog.

Everything here is plain Python and numpy over ``CatalogVideo`` records: taste extraction, the
simulated viewer's watch model, the random and ceiling baselines, the metrics and the plot. The
driver that sends the viewers through the feed's services is ``feed.evaluation``.
"""
from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

#: Hashtags that ask for reach instead of naming content: "for you (page)" in several languages
#: and spellings (fyp, foryou, fy, 4u, fypシ, parati, voorjou, рекомендации...), the generic
#: trend and engagement tags, the names of TikTok's formats (duet, stitch, greenscreen) and the
#: "xyzbca"-style tags people add to game the algorithm. A taste built on one of them would be
#: "videos someone wanted to go viral", a mix of everything.
REACH_HASHTAGS = frozenset({
    # "for you" and its spellings and translations
    "fyp", "foryou", "foryoupage", "fy", "fypシ", "fypage", "fyppage", "foryourpage", "foru", "4u", "4you",
    "4yp", "fürdich", "fürdichseite", "fyf", "parati", "paravoce", "pourtoi", "perte", "voorjou",
    "voorjoupagina", "vj", "vjp", "voorjepagina", "dlaciebie", "keşfet", "keşfetteyiz", "explore",
    "explorepage", "recommendations", "рекомендации", "рек", "реки", "xyzbca", "xyzcba", "xyz", "abcxyz",
    # trend, reach and engagement requests
    "viral", "viraal", "viralvideo", "trending", "trend", "trendy", "tiktok", "tiktoker", "tiktokers",
    "like", "likes", "follow", "followme", "followforfollow", "share", "comment", "100k", "1m",
    "blowthisup", "blowup", "goviral", "famous", "new", "video", "videos",
    # TikTok's formats, which any kind of content uses
    "duet", "stitch", "greenscreen", "greenscreenvideo", "challenge", "pov",
})

#: A tag on fewer videos than this says nothing about what co-occurs with it.
MIN_TAG_VIDEOS = 2
#: Hashtags merge into one taste when their videos overlap this much (Jaccard index), or when
#: this share of a tag's videos is already in the taste.
MERGE_JACCARD = 0.25
MERGE_INSIDE = 0.8
#: Tastes this alike (Jaccard index of their videos) are one taste: the first is kept.
DEDUPE_JACCARD = 0.5

#: Watch model (milliseconds). A video whose length is unknown (0) is taken to last this long.
UNKNOWN_DURATION_MS = 15_000
LIKED_LOOPS = (0.9, 2.5)
SKIP_MIN_MS = 500
SKIP_MAX_MS = 3_000
SKIP_FLOOR_MS = 600
SKIP_SHARE = 0.3


@dataclass(frozen=True)
class CatalogVideo:
    """What the yardstick reads of a video: metadata only, never its vector."""

    id: int
    creator: str
    hashtags: frozenset[str]
    duration_ms: int


@dataclass(frozen=True)
class Taste:
    """A set of catalog videos a simulated viewer likes."""

    name: str  # "#fitness" or "@handle"
    kind: str  # "hashtag" or "creator"
    videos: frozenset[int]
    catalog_size: int
    #: The hashtags merged into a hashtag taste, its seed first.
    tags: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return len(self.videos)

    @property
    def share(self) -> float:
        """The base rate: the share of the catalog that is on-topic."""
        return self.size / self.catalog_size

    @property
    def label(self) -> str:
        if len(self.tags) <= 1:
            return self.name
        return f"{self.name} (+{', '.join(self.tags[1:])})"


def jaccard(a: frozenset | set, b: frozenset | set) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def _share_ok(size: int, n: int, min_share: float, max_share: float) -> bool:
    eps = 1e-9  # 20 of 1000 is 2 %, whatever the float arithmetic says
    return min_share * n - eps <= size <= max_share * n + eps


def hashtag_tastes(videos: Sequence[CatalogVideo], *, min_share: float, max_share: float,
                   merge_jaccard: float = MERGE_JACCARD, merge_inside: float = MERGE_INSIDE,
                   stoplist: frozenset[str] = REACH_HASHTAGS) -> list[Taste]:
    """Hashtag topics: each content tag, most frequent first, seeds a taste that takes in every
    other tag that mostly occurs with it: whose videos overlap the taste's with a Jaccard index
    of at least ``merge_jaccard``, or lie ``merge_inside`` or more inside it (a narrower tag of
    the same topic), repeatedly as the taste grows, as long as it stays within ``max_share`` of
    the catalog. A tag joins at most one taste. Tastes under ``min_share`` are dropped."""
    n = len(videos)
    by_tag: dict[str, set[int]] = defaultdict(set)
    for video in videos:
        for tag in video.hashtags:
            by_tag[tag].add(video.id)
    largest = max_share * n + 1e-9
    candidates = sorted(
        (tag for tag, ids in by_tag.items()
         if tag not in stoplist and MIN_TAG_VIDEOS <= len(ids) <= largest),
        key=lambda tag: (-len(by_tag[tag]), tag),
    )
    assigned: set[str] = set()
    tastes = []
    for seed in candidates:
        if seed in assigned:
            continue
        members, covered = [seed], set(by_tag[seed])
        grew = True
        while grew:
            grew = False
            for tag in candidates:
                if tag in assigned or tag in members:
                    continue
                ids = by_tag[tag]
                inside = len(ids & covered) / len(ids)
                if ((jaccard(ids, covered) >= merge_jaccard or inside >= merge_inside)
                        and len(covered | ids) <= largest):
                    members.append(tag)
                    covered |= ids
                    grew = True
        assigned.update(members)
        if _share_ok(len(covered), n, min_share, max_share):
            tastes.append(Taste(f"#{seed}", "hashtag", frozenset(covered), n, tuple(members)))
    return tastes


def creator_tastes(videos: Sequence[CatalogVideo], *, min_share: float, max_share: float) -> list[Taste]:
    """Creators with between ``min_share`` and ``max_share`` of the catalog, largest first."""
    n = len(videos)
    by_creator: dict[str, set[int]] = defaultdict(set)
    for video in videos:
        by_creator[video.creator].add(video.id)
    return [
        Taste(f"@{handle}", "creator", frozenset(ids), n)
        for handle, ids in sorted(by_creator.items(), key=lambda item: (-len(item[1]), item[0]))
        if _share_ok(len(ids), n, min_share, max_share)
    ]


def extract_tastes(videos: Sequence[CatalogVideo], *, min_share: float = 0.02, max_share: float = 0.15,
                   merge_jaccard: float = MERGE_JACCARD, merge_inside: float = MERGE_INSIDE,
                   dedupe_jaccard: float = DEDUPE_JACCARD,
                   stoplist: frozenset[str] = REACH_HASHTAGS) -> list[Taste]:
    """Hashtag topics, then creators, with no two tastes overlapping heavily: a taste whose
    videos have a Jaccard index of ``dedupe_jaccard`` or more with one already kept (hashtag
    topics first, larger first) is left out. A creator inside a broader topic stays: liking one
    account is a narrower taste than liking its topic."""
    if not 0 < min_share <= max_share <= 1:
        raise ValueError("shares must satisfy 0 < min_share <= max_share <= 1")
    ordered = (hashtag_tastes(videos, min_share=min_share, max_share=max_share,
                              merge_jaccard=merge_jaccard, merge_inside=merge_inside, stoplist=stoplist)
               + creator_tastes(videos, min_share=min_share, max_share=max_share))
    kept: list[Taste] = []
    for taste in ordered:
        if all(jaccard(taste.videos, other.videos) < dedupe_jaccard for other in kept):
            kept.append(taste)
    return kept


# --- the simulated viewer ----------------------------------------------------------------------

def watch_ms(liked: bool, duration_ms: int, rng: np.random.Generator, noise: float = 0.0) -> int:
    """How long a viewer stays on a video of ``duration_ms`` (0: unknown).

    Liked: watched through, often more than once (``duration × U(0.9, 2.5)``). Not liked: left
    within a few seconds (``U(500, min(3000, max(600, 0.3 × duration)))`` ms). With probability
    ``noise`` the watch is flipped: a liked video skipped, a disliked one watched long.
    """
    d = duration_ms if duration_ms > 0 else UNKNOWN_DURATION_MS
    if noise and rng.random() < noise:
        liked = not liked
    if liked:
        return int(round(d * rng.uniform(*LIKED_LOOPS)))
    return int(round(rng.uniform(SKIP_MIN_MS, min(SKIP_MAX_MS, max(SKIP_FLOOR_MS, SKIP_SHARE * d)))))


def random_uuid(rng: np.random.Generator) -> uuid.UUID:
    """A UUID from ``rng``: a seeded run names its sessions and events the same every time."""
    return uuid.UUID(int=int.from_bytes(rng.bytes(16), "big"))


@dataclass
class Viewer:
    """One simulated viewer: likes exactly the videos of its taste."""

    taste: Taste
    rng: np.random.Generator
    noise: float = 0.0

    def likes(self, video_id: int) -> bool:
        return video_id in self.taste.videos

    def watch(self, video_id: int, duration_ms: int) -> int:
        return watch_ms(self.likes(video_id), duration_ms, self.rng, self.noise)


# --- baselines ---------------------------------------------------------------------------------

def ceiling_per_batch(taste_size: int, batch_size: int, batches: int) -> list[float]:
    """The on-topic share of each batch of a feed that knows the taste from the first batch: it
    serves the taste's unseen videos first, so a rare taste runs out (exact)."""
    return [min(batch_size, max(0, taste_size - b * batch_size)) / batch_size for b in range(batches)]


def random_per_batch(catalog_ids: Sequence[int], liked: frozenset[int], batch_size: int, batches: int,
                     rng: np.random.Generator) -> list[float]:
    """The on-topic share of each batch of a uniformly random feed that never repeats a video
    (until it has served the whole catalog)."""
    ids = np.asarray(catalog_ids)
    needed = batch_size * batches
    order = np.concatenate([rng.permutation(ids) for _ in range(math.ceil(needed / len(ids)))])[:needed]
    hits = np.fromiter((int(i) in liked for i in order), dtype=bool, count=needed)
    return hits.reshape(batches, batch_size).mean(axis=1).tolist()


# --- metrics -----------------------------------------------------------------------------------

def window_mean(per_batch: Sequence[float], window: tuple[int, int]) -> float:
    """The mean of batches ``window[0]`` to ``window[1]`` (1-based, inclusive)."""
    first, last = window
    return float(np.mean(per_batch[first - 1:last]))


@dataclass
class Score:
    """One feed (an algorithm or a baseline) on one taste, or averaged over tastes."""

    per_batch: list[float]
    window: float
    lift: float  # window / base rate
    of_ceiling: float  # window / the ceiling's window
    #: The standard error of ``of_ceiling`` over the viewers (0 for one viewer): how far another
    #: draw of as many viewers could move it.
    of_ceiling_se: float = 0.0

    def as_dict(self, digits: int = 4) -> dict:
        return {"per_batch": [round(x, digits) for x in self.per_batch], "window_mean": round(self.window, digits),
                "lift": round(self.lift, digits), "of_ceiling": round(self.of_ceiling, digits),
                "of_ceiling_se": round(self.of_ceiling_se, digits)}


def score(per_viewer: Sequence[Sequence[float]], base_rate: float, ceiling: Sequence[float],
          window: tuple[int, int]) -> Score:
    """A feed's score on one taste from each viewer's per-batch on-topic shares."""
    per_viewer = np.asarray(per_viewer, dtype=float)
    per_batch = np.mean(per_viewer, axis=0).tolist()
    mean = window_mean(per_batch, window)
    top = window_mean(ceiling, window)
    viewers = [window_mean(row, window) for row in per_viewer]
    se = float(np.std(viewers, ddof=1) / math.sqrt(len(viewers))) if len(viewers) > 1 else 0.0
    return Score(per_batch, mean, mean / base_rate, mean / top if top else 0.0, se / top if top else 0.0)


def average(scores: Iterable[Score]) -> Score:
    """Scores averaged over tastes, each taste counting once (tastes' viewers are independent,
    so the standard errors add in quadrature)."""
    scores = list(scores)
    return Score(
        np.mean([s.per_batch for s in scores], axis=0).tolist(),
        float(np.mean([s.window for s in scores])),
        float(np.mean([s.lift for s in scores])),
        float(np.mean([s.of_ceiling for s in scores])),
        math.sqrt(sum(s.of_ceiling_se ** 2 for s in scores)) / len(scores),
    )


@dataclass
class Report:
    """Every feed's scores per taste; what the command prints, writes and plots."""

    tastes: list[Taste]
    batches: int
    window: tuple[int, int]
    batch_size: int
    #: feed name (an algorithm's slug, "random", "ceiling") -> taste name -> score
    scores: dict[str, dict[str, Score]] = field(default_factory=dict)
    batch_sizes: dict[str, int] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    BASELINES = ("random", "ceiling")

    @property
    def algorithms(self) -> list[str]:
        return [name for name in self.scores if name not in self.BASELINES]

    def mean(self, feed: str) -> Score:
        return average(self.scores[feed][t.name] for t in self.tastes)

    def base_rate(self) -> float:
        return float(np.mean([t.share for t in self.tastes]))

    def as_dict(self) -> dict:
        return {
            "settings": {**self.settings, "batches": self.batches, "window": list(self.window),
                         "batch_size": self.batch_size},
            "catalog_videos": self.tastes[0].catalog_size if self.tastes else 0,
            "tastes": [{"name": t.name, "kind": t.kind, "tags": list(t.tags), "videos": t.size,
                        "share": round(t.share, 4)} for t in self.tastes],
            "base_rate": round(self.base_rate(), 4),
            "feeds": {
                feed: {
                    "batch_size": self.batch_sizes.get(feed, self.batch_size),
                    "mean": self.mean(feed).as_dict(),
                    "tastes": {name: s.as_dict() for name, s in by_taste.items()},
                }
                for feed, by_taste in self.scores.items()
            },
        }

    # --- text ---

    def table(self) -> str:
        """Per taste: base rate, random, ceiling and each algorithm over the window (share,
        lift over the base rate, share of the ceiling); then the per-batch means."""
        lo, hi = self.window
        algorithms = self.algorithms
        width = max([len("mean over tastes"), *(len(t.name) for t in self.tastes)])
        head = f"{'taste':<{width}}  {'base':>5}  {'random':>6}  {'ceiling':>7}"
        for slug in algorithms:
            head += f"  {slug[:21]:>21}"
        sub = " " * (width + 24) + "".join(f"  {'share':>6} {'lift':>7} {'%ceil':>6}" for _ in algorithms)
        lines = [f"on-topic share over batches {lo}-{hi}", head, sub]
        rows = [(t.name, t.share, t.name) for t in self.tastes] + [("mean over tastes", self.base_rate(), None)]
        for label, base, key in rows:
            pick = (lambda feed: self.scores[feed][key]) if key else self.mean
            line = f"{label:<{width}}  {base:5.3f}  {pick('random').window:6.3f}  {pick('ceiling').window:7.3f}"
            for slug in algorithms:
                s = pick(slug)
                line += f"  {s.window:6.3f} {s.lift:6.1f}x {100 * s.of_ceiling:5.1f}%"
            lines.append(line)
        for slug in algorithms:
            m = self.mean(slug)
            lines.append(f"{slug}: {100 * m.of_ceiling:.1f}% of the ceiling, standard error "
                         f"{100 * m.of_ceiling_se:.1f} points over the viewers (two algorithms closer than "
                         f"about twice that are not told apart by this run)")
        lines += ["", "on-topic share per batch, mean over tastes",
                  f"{'batch':>5}  {'random':>6}  {'ceiling':>7}" + "".join(f"  {slug[:21]:>21}" for slug in algorithms)]
        means = {feed: self.mean(feed) for feed in self.scores}
        for b in range(self.batches):
            line = f"{b + 1:>5}  {means['random'].per_batch[b]:6.3f}  {means['ceiling'].per_batch[b]:7.3f}"
            line += "".join(f"  {means[slug].per_batch[b]:21.3f}" for slug in algorithms)
            lines.append(line)
        return "\n".join(lines)

    # --- plot ---

    def plot(self, path) -> None:
        """Two panels as a PNG: the per-batch on-topic share averaged over tastes for each feed,
        and each taste's mean over the window for each algorithm against ceiling and base rate."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(13, 9), layout="constrained")
        FigureCanvasAgg(fig)
        top, bottom = fig.subplots(2, 1, height_ratios=[1, 1.2])
        x = np.arange(1, self.batches + 1)
        lo, hi = self.window
        top.axvspan(lo - 0.5, hi + 0.5, color="0.93", label=f"window {lo}-{hi}")
        for slug in self.algorithms:
            top.plot(x, self.mean(slug).per_batch, marker="o", label=slug)
        top.plot(x, self.mean("random").per_batch, color="0.5", linestyle="--", marker=".", label="random")
        top.plot(x, self.mean("ceiling").per_batch, color="black", linestyle=":", label="ceiling")
        top.axhline(self.base_rate(), color="0.5", linewidth=0.8, label="base rate")
        top.set(xlabel="batch", ylabel="on-topic share", ylim=(0, 1.05), xticks=x, xlim=(0.5, self.batches + 0.5),
                title=f"On-topic share per batch, mean over {len(self.tastes)} tastes")
        top.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")

        names = [t.name for t in self.tastes]
        pos = np.arange(len(names))
        slugs = self.algorithms
        width = 0.8 / (len(slugs) + 1)
        bottom.bar(pos - 0.4 + width / 2, [self.scores["ceiling"][n].window for n in names], width,
                   color="0.85", edgecolor="0.6", label="ceiling")
        for i, slug in enumerate(slugs, start=1):
            bottom.bar(pos - 0.4 + width * (i + 0.5), [self.scores[slug][n].window for n in names], width, label=slug)
        bottom.scatter(pos, [t.share for t in self.tastes], marker="_", s=400, color="red", zorder=3,
                       label="base rate")
        bottom.set_xticks(pos, names, rotation=35, ha="right", fontsize="small")
        bottom.set(ylabel=f"mean on-topic share, batches {lo}-{hi}", ylim=(0, 1.05),
                   title="Per taste, over the window")
        bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
        fig.savefig(path, dpi=100)
