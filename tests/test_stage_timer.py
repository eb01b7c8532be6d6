"""rs_helpers.device.stage_timer: seconds per stage, accumulated, with CUDA synchronised at
each edge (otherwise an asynchronous stage's time lands on the next one that waits)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import rs_helpers.device as timing
from rs_helpers.device import stage_timer


@pytest.fixture
def clock(monkeypatch):
    """perf_counter replaced by a clock that advances 1.5 s a reading; synchronise calls recorded."""
    ticks, syncs = iter(1.5 * i for i in range(100)), []
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    monkeypatch.setattr(timing.torch.cuda, "synchronize", lambda device=None: syncs.append(device))
    return syncs


@pytest.mark.parametrize("device", [None, "cpu", torch.device("cpu")])
def test_cpu_stages_are_timed_without_synchronising(clock, device):
    timings = {"other": 7.0}
    with stage_timer(timings, "clip_dense", device):
        pass
    assert timings == {"other": 7.0, "clip_dense": 1.5} and clock == []


def test_repeated_stages_add_up(clock):
    timings = {}
    for _ in range(3):
        with stage_timer(timings, "selection"):
            pass
    assert timings == {"selection": 4.5}


@pytest.mark.parametrize("device", ["cuda", torch.device("cuda", 1)])
def test_cuda_is_synchronised_before_and_after_the_block(clock, device):
    timings, seen = {}, []
    with stage_timer(timings, "sam3_vision", device):
        seen.append(len(clock))  # the first synchronise happened before the block ran
    assert seen == [1] and clock == [device, device] and timings == {"sam3_vision": 1.5}


def test_a_failing_stage_records_nothing(clock):
    timings = {}
    with pytest.raises(ValueError), stage_timer(timings, "proposals"):
        raise ValueError("bad mask")
    assert timings == {}


def test_the_sam_clip_and_clip_only_pipelines_time_on_the_clip_device(monkeypatch, tiny_sam, tiny_clip):
    """Both pipelines hand CLIP's device to every stage (so on a GPU each stage is synchronised)."""
    import numpy as np

    from rs_helpers.ovss import clip_only, pipeline

    seen = []

    def recording(timings, name, device=None):
        seen.append((name, device))
        return stage_timer(timings, name, device)

    monkeypatch.setattr(pipeline, "stage_timer", recording)
    monkeypatch.setattr(clip_only, "stage_timer", recording)
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    result = pipeline.segment(rgb, "a;b", sam=tiny_sam, clip=tiny_clip)
    names = [n for n, _ in seen]
    assert names[:4] == ["resize", "proposals", "clip_text", "clip_dense"] and names[-1] == "upsample"
    assert {d for _, d in seen} == {tiny_clip.device} and set(names) <= set(result.timings)
    seen.clear()
    clip_only.segment_clip(rgb, "a;b", clip=tiny_clip)
    assert [n for n, _ in seen] == ["resize", "clip_text", "clip_dense", "upsample"]
    assert {d for _, d in seen} == {tiny_clip.device}
