"""The loop every batching stage shares: items of many videos in one batch, and a batch that breaks
on one video's input failing that video alone."""

from __future__ import annotations

from dataclasses import dataclass, field

from action100m.common.batching import VideoChunk, VideoEnded, VideoStarted, cross_video_batches


@dataclass
class Item:
    video_uid: str
    value: float


@dataclass
class Session:
    uid: str
    total: float = 0.0
    seen: list[float] = field(default_factory=list)

    def on_chunk(self, item: Item) -> list[Item]:
        return [item]

    def on_end(self, info: object) -> list[Item]:
        return []

    def apply(self, item: Item, output: float) -> None:
        self.total += output

    def finish(self) -> float:
        return self.total


def events(values: dict[str, list[float]]):
    for uid, items in values.items():
        yield VideoStarted(uid, None)
        for value in items:
            yield VideoChunk(uid, Item(uid, value))
        yield VideoEnded(uid, None)


def test_a_batch_broken_by_one_videos_input_fails_only_that_video():
    batches: list[list[str]] = []

    def run_batch(items: list[Item]) -> list[float]:
        batches.append([item.video_uid for item in items])
        if any(item.value != item.value for item in items):  # NaN: what a model cannot take
            raise ValueError("shape mismatch in the batch")
        return [2 * item.value for item in items]

    values = {"a": [1.0, 2.0], "bad": [1.0, float("nan")], "c": [3.0], "d": [4.0, 5.0, 6.0]}
    results = dict(cross_video_batches(events(values), lambda e: Session(e.video_uid), run_batch, batch_size=8))
    assert results["a"] == 6.0 and results["c"] == 6.0 and results["d"] == 30.0
    assert isinstance(results["bad"], ValueError)
    assert batches[0] == ["a", "a", "bad", "bad", "c", "d", "d", "d"]  # one batch of every video first
    assert ["bad", "bad"] in batches[1:]  # then each video of it alone
