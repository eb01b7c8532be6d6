"""The eval's results file: round trips, a line cut by a kill, other settings refused, every
rank's file read and folded into one, and ``evaluate`` resumed from it with the same metrics."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rs_helpers.distributed import Processes
from rs_helpers.errors import BadInputError
from rs_helpers.evaluation.ovss_eval import evaluate, sample_keys
from rs_helpers.evaluation.results_log import ResultsLog, rank_files, rank_path, results_path

import fake_layouts as fl
from rs_helpers.evaluation.datasets import IGNORE
from rs_helpers.evaluation.datasets.base import OvssDataset, SegSample
from rs_helpers.evaluation.datasets.codec import LabelCodec

SETTINGS = {"tau": 0.5, "grid": (8, 8)}


def test_records_round_trip_and_a_line_cut_by_a_kill_is_dropped(tmp_path):
    path = results_path(tmp_path / "e.json")
    assert path.name == "e.results.jsonl"
    log = ResultsLog(path, SETTINGS)
    log.append({"key": "a", "n": 1})
    log.append({"key": "b", "n": 2})
    log.close()
    assert ResultsLog(path, SETTINGS).load() == {"a": {"key": "a", "n": 1}, "b": {"key": "b", "n": 2}}
    with open(path, "ab") as fh:  # SIGKILL in the middle of writing a record
        fh.write(b'{"key": "c", "n"')
    log = ResultsLog(path, SETTINGS)
    assert set(log.load()) == {"a", "b"}
    log.append({"key": "c", "n": 3})  # the partial line is cut away before appending
    log.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[-1]) == {"key": "c", "n": 3}


def test_other_settings_and_foreign_files_are_refused(tmp_path):
    path = tmp_path / "e.results.jsonl"
    log = ResultsLog(path, SETTINGS)
    log.append({"key": "a"})
    log.close()
    with pytest.raises(BadInputError, match=r"other settings \(tau: 0.5 then, 0.3 now\).*--fresh"):
        ResultsLog(path, {**SETTINGS, "tau": 0.3}).load()
    path.write_text('{"something": "else"}\n')
    with pytest.raises(BadInputError, match="not a results file"):
        ResultsLog(path, SETTINGS).load()
    path.write_text('{"rs_helpers_results": 1, "settings": {"grid": [8, 8], "tau": 0.5}}\n[1, 2]\n')
    with pytest.raises(BadInputError, match="line 2: not a sample record"):
        ResultsLog(path, SETTINGS).load()


def test_every_rank_file_is_read_and_consolidate_folds_them_into_one(tmp_path):
    path = tmp_path / "e.results.jsonl"
    assert rank_path(path, 0) == path and rank_path(path, 3).name == "e.results.rank3.jsonl"
    for rank, keys in ((0, "ab"), (1, "cd"), (2, "e")):
        log = ResultsLog(path, SETTINGS, rank=rank)
        for key in keys:
            log.append({"key": key})
        log.close()
    (tmp_path / "e.results.rankX.jsonl").write_text("not ours")  # not a rank file: left alone
    assert [p.name for p in rank_files(path)] == ["e.results.jsonl", "e.results.rank1.jsonl",
                                                  "e.results.rank2.jsonl"]
    log = ResultsLog(path, SETTINGS)
    assert sorted(log.load()) == list("abcde")
    assert log.records_by_others() == 3
    log.consolidate([{"key": k} for k in "edcba"])
    assert rank_files(path) == [path]
    assert list(ResultsLog(path, SETTINGS).load()) == list("edcba")
    log.discard()
    assert not path.exists() and (tmp_path / "e.results.rankX.jsonl").exists()


def test_repeated_ids_get_distinct_keys():
    class S:
        def __init__(self, id):
            self.id = id

    assert sample_keys([S("a"), S("b"), S("a"), S("a")]) == ["a", "b", "a#2", "a#3"]


class Three(OvssDataset):
    name, title, kind, classes, paper, segearth_ov = "three", "Three", "multiclass", ["a", "b", "c"], None, None
    needs_root = False
    protocol = "hand-built"

    def find(self, root):
        return self._samples


def three_images(tmp_path):
    """Three 6 x 6 images with random labels (some ignored) and predictions."""
    rng = np.random.default_rng(0)
    samples, predictions = [], {}
    for name in "xyz":
        gt = rng.integers(0, 3, (6, 6)).astype(np.uint8)
        gt[0, :2] = IGNORE
        fl.write(tmp_path / f"{name}.png", fl.rgb(6, 6))
        fl.write(tmp_path / f"{name}_gt.png", gt)
        samples.append(SegSample(name, tmp_path / f"{name}.png", tmp_path / f"{name}_gt.png",
                                 codec=LabelCodec(values={0: 0, 1: 1, 2: 2, IGNORE: IGNORE})))
        predictions[name] = rng.integers(0, 3, (6, 6)).astype(np.uint8)
    Three._samples = samples
    return Three(), predictions


class Counting:
    """A segmenter that counts its calls and can stop the run after ``stop_after`` images."""

    def __init__(self, predictions, stop_after=None):
        self.predictions, self.stop_after, self.calls = predictions, stop_after, 0

    def __call__(self, image, classes, binary):
        if self.stop_after is not None and self.calls >= self.stop_after:
            raise KeyboardInterrupt
        self.calls += 1
        from pathlib import Path
        return self.predictions[Path(image.path).stem]


def test_an_interrupted_eval_resumes_to_the_metrics_of_an_uninterrupted_one(tmp_path):
    ds, predictions = three_images(tmp_path)
    whole = evaluate(ds, Counting(predictions), progress=False)
    path = tmp_path / "out" / "e.results.jsonl"
    path.parent.mkdir()
    with pytest.raises(KeyboardInterrupt):
        evaluate(ds, Counting(predictions, stop_after=1), progress=False, log=ResultsLog(path, SETTINGS))
    assert len(ResultsLog(path, SETTINGS).load()) == 1  # the finished image is kept
    again = Counting(predictions)
    resumed = evaluate(ds, again, progress=False, log=ResultsLog(path, SETTINGS))
    assert again.calls == len(ds.samples) - 1 and resumed.resumed == 1
    assert [g.value for g in resumed.groups] == [g.value for g in whole.groups]
    assert np.array_equal(resumed.groups[0].confusion.matrix, whole.groups[0].confusion.matrix)
    assert [r.score for r in resumed.images] == [r.score for r in whole.images]
    idle = Counting(predictions)
    finished = evaluate(ds, idle, progress=False, log=ResultsLog(path, SETTINGS))
    assert idle.calls == 0 and [g.value for g in finished.groups] == [g.value for g in whole.groups]


def test_shards_are_contiguous_and_cover_everything_once():
    items = list(range(11))
    shards = [Processes(rank=r, world=3).shard(items) for r in range(3)]
    assert shards == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9, 10]]
    assert Processes().shard(items) == items and Processes().gather(5) == [5]


def test_a_header_cut_by_a_kill_starts_the_file_again_and_foreign_bytes_are_refused(tmp_path):
    path = tmp_path / "e.results.jsonl"
    path.write_bytes(b'{"rs_helpers_res')  # killed while writing the first line
    log = ResultsLog(path, SETTINGS)
    assert log.load() == {}
    log.append({"key": "a"})
    log.close()
    assert ResultsLog(path, SETTINGS).load() == {"a": {"key": "a"}}
    assert path.read_text().startswith('{"rs_helpers_results":1,')
    path.write_bytes(b"\x00\xff" * 50)  # no newline, and not the start of a results file
    with pytest.raises(BadInputError, match="not a results file"):
        ResultsLog(path, SETTINGS).load()
