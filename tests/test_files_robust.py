"""Bad files never end in a traceback: JSON lines read defensively (file and line named), writers
whole or not at all, checkpoints loaded safely (a pickle that would run code is refused, never
run), the checkpoint cache, class strings, and one bad sample skipped (not fatal) in
``eval ovss`` and ``lora-data``. Every bad file is made here, in ``tmp_path``."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fake_layouts as fl
from rs_helpers.cli import main
from rs_helpers.errors import BadInputError, WeightsUnavailableError
from rs_helpers.samples import ReferringSample

GOOD_ANSWER = '{"clicks": [{"x": 500, "y": 500, "label": 1}]}'


def _image(path: Path, h: int = 16, w: int = 16) -> Path:
    fl.write(path, fl.rgb(h, w))
    return path


def _line(img: Path, **fields) -> dict:
    line = {"image": str(img), "text": "the red roof", "task": "referring", "n_clicks": 6,
            "clicks": [{"x": 500, "y": 500, "label": 1}], "answer": GOOD_ANSWER}
    line.update(fields)
    return line


def _write_lines(path: Path, lines) -> Path:
    """Lines as given: dicts become JSON, str and bytes are written as they are."""
    chunks = []
    for line in lines:
        if isinstance(line, dict):
            line = json.dumps(line)
        chunks.append(line if isinstance(line, bytes) else line.encode("utf-8"))
    path.write_bytes(b"\n".join(chunks) + b"\n")
    return path


def _no_traceback(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    return captured.err


# --------------------------------------------------------------------------- JSON lines
BAD_LINES = [
    (b"\xff\xfe not utf-8", "not UTF-8"),
    ("[" * 100_000 + "]" * 100_000, "not JSON"),
    ('{"clicks": [{"x": Infinity, "y": 1, "label": 1}]}', "not a finite number"),
    ('{"clicks": [{"x": NaN, "y": 1, "label": 1}]}', "not a finite number"),
    ('{"clicks": [{"x": -Infinity, "y": 1, "label": 1}]}', "not a finite number"),
    ('{"iou": 1e999}', "not a finite number"),
    ('{"x": ' + "9" * 5000 + "}", "not JSON"),
    ("[" * 80 + "]" * 80, "nested more than"),
    ("{not json", "not JSON"),
]


@pytest.mark.parametrize("raw, words", BAD_LINES, ids=lambda v: str(v)[:20])
def test_bad_jsonl_line_names_file_and_line_everywhere(tmp_path, raw, words):
    from rs_helpers.evaluation.datasets import get_referring_dataset
    from rs_helpers.lora.data import read_jsonl
    from rs_helpers.lora.train import read_train_file

    from rs_helpers.samples import load_referring

    image = _image(tmp_path / "a.png")
    shipped = {"id": load_referring()[0].id, "dataset": "samples", "root": None, "split": "all"}
    for first, read in ((_line(image), read_jsonl), (_line(image), read_train_file),
                        (shipped, lambda p: get_referring_dataset("jsonl", root=p))):
        path = _write_lines(tmp_path / "bad.jsonl", [{**first, **shipped} if read is read_jsonl else first, "", raw])
        with pytest.raises(BadInputError) as info:
            read(path)
        message = str(info.value)
        assert str(path) in message and "line 3: " in message and words in message, message


def test_training_file_lists_every_bad_line_with_its_number(tmp_path):
    """Wrong types in every field: each one is a problem of its line, none a traceback."""
    from rs_helpers.lora.train import read_train_file

    image = _image(tmp_path / "a.png")
    bad = [
        ("image", ["a.png"], '"image" must be a path string'),
        ("image", "a\u0000b.png", "not"),
        ("image", "x" * 5000 + ".png", "not"),
        ("text", ["the", "roof"], '"text" must be a string'),
        ("text", {"t": 1}, '"text" must be a string'),
        ("task", ["referring"], '"task" must be a string'),
        ("task", 7, '"task" must be a string'),
        ("n_clicks", 6.0, '"n_clicks" must be an integer'),
        ("n_clicks", True, '"n_clicks" must be an integer'),
        ("n_clicks", "6", '"n_clicks" must be an integer'),
        ("n_clicks", 10 ** 30, '"n_clicks" must be an integer'),
        ("answer", ["x"], '"answer" must be a string'),
        ("answer", 12, '"answer" must be a string'),
        ("clicks", "500,500", '"clicks" is not a list'),
        ("clicks", [{"x": 500.5, "y": 1, "label": 1}], '"clicks" is not a list'),
        ("clicks", [{"x": True, "y": 1, "label": 1}], '"clicks" is not a list'),
        ("clicks", [{"x": "500", "y": 1, "label": 1}], '"clicks" is not a list'),
        ("clicks", [{"x": 5000, "y": 1, "label": 1}], '"clicks" is not a list'),
        ("clicks", [[500, 500]], '"clicks" is not a list'),
    ]
    lines = [_line(image)] + [_line(image, **{key: value}) for key, value, _ in bad] + ['"just a string"', "[1, 2]"]
    path = _write_lines(tmp_path / "train.jsonl", lines)
    with pytest.raises(BadInputError) as info:
        read_train_file(path)
    message = str(info.value)
    assert f"{len(bad) + 2} problem(s)" in message and "line 1:" not in message
    for number, (_, _, words) in enumerate(bad, start=2):
        assert words in message.split(f"\n  line {number}: ")[1].split("\n")[0], (number, words)
    assert "not a JSON object" in message.split(f"line {len(bad) + 2}: ")[1]


def test_training_file_that_cannot_be_read(tmp_path):
    from rs_helpers.lora.train import read_train_file

    with pytest.raises(BadInputError, match="no such training file"):
        read_train_file(tmp_path / "missing.jsonl")
    with pytest.raises(BadInputError, match="no such training file|not a usable"):
        read_train_file(tmp_path / "a\u0000b.jsonl")


def test_train_lora_command_exits_2_naming_the_line(tmp_path, capsys):
    image = _image(tmp_path / "a.png")
    path = _write_lines(tmp_path / "train.jsonl", [_line(image), '{"x": NaN}'])
    code = main(["train-lora", "--train", str(path), "--out", str(tmp_path / "adapter"), "--profile", "tiny"])
    assert code == 2
    err = _no_traceback(capsys)
    assert str(path) in err and "line 2: " in err and "not a finite number" in err


jsonish = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                       lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids,
                                                                                max_size=3),
                       max_leaves=12)
line_fields = st.fixed_dictionaries({}, optional={k: jsonish for k in
                                                  ("image", "text", "task", "n_clicks", "clicks", "answer")})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(line_fields.map(lambda d: json.dumps(d)), st.binary(max_size=30),
                                st.text(max_size=30)), min_size=1, max_size=5))
def test_any_jsonl_content_reads_or_is_bad_input(tmp_path, lines):
    """Whatever the lines hold: the readers return checked values or raise BadInputError."""
    from rs_helpers.lora.data import read_jsonl
    from rs_helpers.lora.train import read_train_file

    path = tmp_path / "random.jsonl"
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode("utf-8", "surrogatepass") for x in lines))
    for read in (read_jsonl, read_train_file):
        try:
            out = read(path)
        except BadInputError as exc:
            assert str(path) in str(exc)
        else:
            assert isinstance(out, list)


def test_jsonl_datasets_that_refer_to_each_other_are_refused(tmp_path, capsys):
    from rs_helpers.evaluation.datasets import get_referring_dataset

    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    _write_lines(a, [{"id": "x", "dataset": "jsonl", "root": str(b), "split": "all"}])
    _write_lines(b, [{"id": "x", "dataset": "JSONL", "root": "c.jsonl", "split": "all"}])  # relative, any case
    _write_lines(c, [{"id": "x", "dataset": "jsonl", "root": str(a), "split": "all"}])
    with pytest.raises(BadInputError) as info:
        get_referring_dataset("jsonl", root=a)
    message = str(info.value)
    assert f"{a}: line 1" in message and f"{c}: line 1" in message and "loop" in message
    _write_lines(a, [{"id": "x", "dataset": "jsonl", "root": "a.jsonl", "split": "all"}])
    with pytest.raises(BadInputError, match="its own file"):
        get_referring_dataset("jsonl", root=a)
    _write_lines(a, [{"id": "x", "dataset": "jsonl", "root": str(b), "split": "all"}])
    code = main(["lora-data", "--dataset", "jsonl", "--root", str(a), "--out", str(tmp_path / "t.jsonl"),
                 "--profile", "tiny"])
    assert code == 2
    err = _no_traceback(capsys)
    assert "loop" in err and f"{a}: line 1" in err


@pytest.mark.parametrize("field, value", [("dataset", ["rrsisd"]), ("dataset", 3.5), ("split", ["test"]),
                                          ("root", {"a": 1}), ("root", "a\u0000b"), ("id", ["x"]),
                                          ("id", True)])
def test_jsonl_dataset_line_of_wrong_types(tmp_path, field, value):
    from rs_helpers.evaluation.datasets import get_referring_dataset

    line = {"id": "refsegrs_0", "dataset": "refsegrs", "root": str(tmp_path), "split": "test", field: value}
    path = _write_lines(tmp_path / "bad.jsonl", [line])
    with pytest.raises(BadInputError) as info:
        get_referring_dataset("jsonl", root=path)
    assert f"{path}: line 1: " in str(info.value) and field in str(info.value)


def test_dataset_json_files_read_defensively(tmp_path):
    from rs_helpers.evaluation.datasets import get_referring_dataset

    reason = fl.make_earthreason(tmp_path)["root"]
    qa = reason / "test/QAs/test_a.json"
    for content, words in ((b'{"questions": ["a"], "answer": [NaN]}', "not a finite number"),
                           (b'{"questions": "\xff"}', "not UTF-8"), (b'["a"]', "JSON object"),
                           (b'{"questions": [["deep"]]}', "list of strings"), (b"{" * 50000, "not JSON")):
        qa.write_bytes(content)
        with pytest.raises(BadInputError) as info:
            get_referring_dataset("earthreason", root=reason, split="test")
        assert str(qa) in str(info.value) and words in str(info.value)
    rrsisd = fl.make_rrsisd(tmp_path)["root"]
    (rrsisd / "rrsisd/instances.json").write_text('{"images": [], "annotations": {"id": Infinity}}')
    with pytest.raises(BadInputError, match="instances.json.*not a finite number"):
        get_referring_dataset("rrsisd", root=rrsisd)


def test_refs_pickle_that_would_run_code_is_refused(tmp_path):
    from rs_helpers.evaluation.datasets import get_referring_dataset

    rrsisd = fl.make_rrsisd(tmp_path)["root"]
    marker = tmp_path / "ran"
    with open(rrsisd / "rrsisd/refs(unc).p", "wb") as fh:
        pickle.dump([_Evil(marker)], fh)
    with pytest.raises(BadInputError, match="refs pickle"):
        get_referring_dataset("rrsisd", root=rrsisd)
    assert not marker.exists()
    (rrsisd / "rrsisd/refs(unc).p").write_bytes(b"\x80\x04\x95")  # truncated
    with pytest.raises(BadInputError, match="refs pickle"):
        get_referring_dataset("rrsisd", root=rrsisd)


def test_clicks_file_read_defensively(tmp_path):
    from rs_helpers.refer.clicks import read_clicks

    path = tmp_path / "clicks.json"
    for content, words in ((b"\xff", "not UTF-8"), (b'[{"x": NaN, "y": 1, "label": 1}]', "not a finite number"),
                           (b"[" * 100_000, "not JSON"), (b'[{"x": 1.5, "y": 1, "label": 1}]', "entry 0"),
                           (b"[]", "non-empty")):
        path.write_bytes(content)
        with pytest.raises(BadInputError) as info:
            read_clicks(path)
        assert str(path) in str(info.value) and words in str(info.value)
    with pytest.raises(BadInputError, match="is a folder"):
        read_clicks(tmp_path)


# --------------------------------------------------------------------------- writers
def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


def test_jsonl_files_are_written_together_or_not_at_all(tmp_path):
    from rs_helpers.lora.data import read_jsonl, write_jsonl, write_jsonl_files

    train, held = tmp_path / "train.jsonl", tmp_path / "held.jsonl"
    write_jsonl(train, [{"a": 1}])

    def broken():
        yield {"b": 2}
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_jsonl_files([(train, [{"a": 2}]), (held, broken())])
    assert read_jsonl(train) == [{"a": 1}] and not held.exists() and _leftovers(tmp_path) == []
    with pytest.raises(BadInputError, match="cannot write"):
        write_jsonl(train, [{"iou": float("nan")}])  # never write what the reader refuses
    assert read_jsonl(train) == [{"a": 1}]
    write_jsonl(train, [{"text": "lone \udc80 surrogate", "city": "Zürich"}])  # escaped, read back the same
    assert read_jsonl(train) == [{"text": "lone \udc80 surrogate", "city": "Zürich"}]


def test_results_and_clicks_files_are_whole_or_absent(tmp_path, monkeypatch):
    from rs_helpers import files as outputs
    from rs_helpers.refer.clicks import Click, read_clicks, write_clicks
    from rs_helpers.evaluation.ovss_eval import EvalReport, write_results

    report = EvalReport("d", "D", "val", "", "", "tiny", {})
    out = tmp_path / "res.json"
    out.write_text("old")
    clicks = tmp_path / "clicks.json"
    write_clicks(clicks, [Click(1, 2, 1)])
    calls = []

    def disk_full(src, dst):  # the rename fails: the run dies while putting files in place
        calls.append(dst)
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(outputs.os, "replace", disk_full)
    with pytest.raises(BadInputError, match="no result file was written"):
        write_results(report, out)
    with pytest.raises(BadInputError, match="cannot write the clicks file"):
        write_clicks(clicks, [Click(5, 5, 0)])
    monkeypatch.undo()
    assert out.read_text() == "old" and read_clicks(clicks) == [Click(1, 2, 1)]
    assert not (tmp_path / "res_images.csv").exists() and _leftovers(tmp_path) == []
    assert [p.name for p in write_results(report, out)] == ["res.json", "res_images.csv", "res_summary.csv"]


def test_lora_train_json_files_are_written_atomically(tmp_path, monkeypatch):
    from rs_helpers.lora import train as lora_train
    from rs_helpers import files as outputs

    result = lora_train.TrainResult(tmp_path, 3, [{"loss": 1.0}], 10, 100)
    monkeypatch.setattr(outputs.os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        lora_train._write_settings(tmp_path, lora_train.LoraSettings(profile="tiny"), "tiny", result, "t.jsonl", 1.0)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    lora_train._write_settings(tmp_path, lora_train.LoraSettings(profile="tiny"), "tiny", result, "t.jsonl", 1.0)
    assert json.loads((tmp_path / lora_train.SETTINGS_FILE).read_text())["global_step"] == 3


# --------------------------------------------------------------------------- checkpoints
class _Evil:
    """Unpickling this would create ``marker``: a stand-in for code a checkpoint could run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


@pytest.fixture(scope="module")
def sam_state(tmp_path_factory):
    from rs_helpers.models.sam import build_sam_architecture

    path = tmp_path_factory.mktemp("sam") / "tiny_sam.pth"
    torch.save(build_sam_architecture("tiny").state_dict(), path)
    return path


def _bad_checkpoints(folder: Path, good: Path) -> dict:
    data = good.read_bytes()
    marker = folder / "code_ran"
    files = {"truncated": data[: len(data) // 2], "text": b"this is not a checkpoint\n", "empty": b"",
             "one byte short": data[:-1]}
    paths = {}
    for name, content in files.items():
        paths[name] = folder / f"{name.replace(' ', '_')}.pth"
        paths[name].write_bytes(content)
    paths["code"] = folder / "code.pth"
    torch.save({"weights": _Evil(marker)}, paths["code"])
    paths["not tensors"] = folder / "list.pth"
    torch.save([1, 2, 3], paths["not tensors"])
    return paths, marker


def test_bad_sam_checkpoints_are_unusable_weights_and_code_never_runs(tmp_path, sam_state):
    from rs_helpers.models.sam import load_sam

    assert load_sam("vit_b", checkpoint=sam_state, profile="tiny", device="cpu") is not None  # the good one
    paths, marker = _bad_checkpoints(tmp_path, sam_state)
    for name, path in paths.items():
        with pytest.raises(WeightsUnavailableError) as info:
            load_sam("vit_b", checkpoint=path, profile="tiny", device="cpu")
        assert str(path) in str(info.value) and "pass" in str(info.value), name
    assert not marker.exists()


def test_sam_checkpoint_of_another_variant_says_which(tmp_path, sam_state):
    from rs_helpers.models.checkpoints import load_weights_file
    from rs_helpers.models.sam import _sam_variant_of

    state = load_weights_file(sam_state, "SAM", "fix")
    assert _sam_variant_of(state) == "tiny" and _sam_variant_of({}) is None
    state["image_encoder.patch_embed.proj.weight"] = torch.zeros(768, 3, 16, 16)
    torch.save(state, tmp_path / "b.pth")
    with pytest.raises(WeightsUnavailableError, match="holds SAM vit_b weights: pass --sam vit_b"):
        from rs_helpers.models.sam import load_sam

        load_sam("tiny", checkpoint=tmp_path / "b.pth", device="cpu")


def test_cli_bad_sam_checkpoint_exits_3_naming_the_file(tmp_path, sam_state, capsys):
    paths, marker = _bad_checkpoints(tmp_path, sam_state)
    for name in ("truncated", "code", "empty"):
        code = main(["lora-data", "--dataset", "samples", "--limit", "1", "--out", str(tmp_path / "t.jsonl"),
                     "--sam-checkpoint", str(paths[name]), "--profile", "tiny"])
        assert code == 3, name
        err = _no_traceback(capsys)
        assert str(paths[name]) in err and "rs-seg: error:" in err
    assert not marker.exists()


def test_bad_clip_files_are_unusable_weights(tmp_path):
    from rs_helpers.models.clip import load_clip

    tiny = load_clip(profile="tiny", device="cpu")
    good = tmp_path / "clip.pt"
    torch.save(tiny.model.state_dict(), good)
    paths, marker = _bad_checkpoints(tmp_path, good)
    for name in ("truncated", "text", "empty", "code"):
        with pytest.raises(WeightsUnavailableError) as info:
            load_clip(pretrained=str(paths[name]), profile="tiny", device="cpu")
        assert str(paths[name]) in str(info.value), name
    assert not marker.exists()
    torch.save({"visual.nothing": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(WeightsUnavailableError, match="does not fit"):
        load_clip(pretrained=str(tmp_path / "other.pt"), profile="tiny", device="cpu")


def test_unknown_clip_name_or_tag_is_bad_input_before_any_download(monkeypatch):
    from rs_helpers.models import clip as clip_models

    def no_network(*args, **kwargs):
        raise AssertionError("the name is checked before any network access")

    monkeypatch.setattr(clip_models, "host_reachable", no_network)
    with pytest.raises(BadInputError) as info:
        clip_models.load_clip("ViT-B-61", "openai", profile="full", device="cpu")
    assert "unknown CLIP model 'ViT-B-61'" in str(info.value) and "ViT-B-16" in str(info.value)
    with pytest.raises(BadInputError, match="neither a file nor a pretrained tag.*openai"):
        clip_models.load_clip("ViT-B-16", "openia", profile="full", device="cpu")
    with pytest.raises(BadInputError, match="unknown CLIP model"):
        clip_models.check_clip("nope", profile="full")
    clip_models.check_clip("nope", profile="tiny")  # the tiny profile replaces the model anyway
    clip_models.check_clip("ViT-B-16", "openai", profile="full")


# --------------------------------------------------------------------------- the checkpoint cache
def test_a_second_bad_cached_checkpoint_keeps_the_first(tmp_path):
    from rs_helpers.models.checkpoints import Checkpoint, fetch

    ckpt = Checkpoint("http://127.0.0.1:9/sam_x.pth", "000000", size=10, sha256="0" * 64)
    for content in (b"first", b"second", b"third"):
        (tmp_path / ckpt.filename).write_bytes(content)
        with pytest.raises(WeightsUnavailableError):
            fetch(ckpt, tmp_path, progress=False, timeout=2)
    assert (tmp_path / "sam_x.pth.bad").read_bytes() == b"first"
    assert (tmp_path / "sam_x.pth.bad.1").read_bytes() == b"second"
    assert (tmp_path / "sam_x.pth.bad.2").read_bytes() == b"third"


def test_cache_that_is_a_file_or_unwritable_is_bad_input(tmp_path, monkeypatch, capsys):
    from rs_helpers.models import checkpoints as weights
    from rs_helpers.models.checkpoints import Checkpoint, fetch

    ckpt = Checkpoint("http://127.0.0.1:9/sam_x.pth", "000000", size=10)
    a_file = tmp_path / "cache"
    a_file.write_text("not a folder")
    monkeypatch.setenv("RS_HELPERS_CACHE", str(a_file))
    with pytest.raises(BadInputError, match="RS_HELPERS_CACHE.*is a file"):
        fetch(ckpt, progress=False)
    monkeypatch.setenv("RS_HELPERS_CACHE", str(a_file / "sub"))
    with pytest.raises(BadInputError, match="RS_HELPERS_CACHE.*is a file"):
        fetch(ckpt, progress=False)
    folder = tmp_path / "ro"
    folder.mkdir()
    monkeypatch.setenv("RS_HELPERS_CACHE", str(folder))
    real_access = os.access
    monkeypatch.setattr(weights.os, "access", lambda p, m: False if Path(p) == folder else real_access(p, m))
    with pytest.raises(BadInputError, match="RS_HELPERS_CACHE.*not writable"):
        fetch(ckpt, progress=False)
    monkeypatch.setenv("RS_HELPERS_CACHE", str(a_file))
    code = main(["lora-data", "--dataset", "samples", "--limit", "1", "--out", str(tmp_path / "t.jsonl"),
                 "--sam", "vit_b", "--profile", "full"])
    assert code == 2
    assert "RS_HELPERS_CACHE" in _no_traceback(capsys)


def test_interrupted_download_is_kept_as_part_and_resumed(tmp_path, monkeypatch):
    from rs_helpers.models import checkpoints as weights

    payload = bytes(range(256)) * 40
    ckpt = weights.Checkpoint("http://127.0.0.1:9/sam_y.pth", "000000", size=len(payload),
                              sha256=__import__("hashlib").sha256(payload).hexdigest())
    written_to = []

    def half_then_fail(url, part, progress, timeout):
        written_to.append(part)
        with open(part, "ab") as fh:
            fh.write(payload[part.stat().st_size: len(payload) // 2])
        raise OSError("connection reset")

    monkeypatch.setattr(weights, "_download", half_then_fail)
    with pytest.raises(WeightsUnavailableError):
        weights.fetch(ckpt, tmp_path, progress=False)
    part = tmp_path / "sam_y.pth.part"
    assert part.read_bytes() == payload[: len(payload) // 2]
    assert written_to[0] != part and written_to[0].name.startswith(".sam_y.")  # a unique temporary name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sam_y.pth.part"]

    def rest(url, tmp, progress, timeout):
        assert tmp.read_bytes() == payload[: len(payload) // 2]  # resumed, not restarted
        with open(tmp, "ab") as fh:
            fh.write(payload[tmp.stat().st_size:])

    monkeypatch.setattr(weights, "_download", rest)
    assert weights.fetch(ckpt, tmp_path, progress=False).read_bytes() == payload
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sam_y.pth", "sam_y.pth.verified"]
    assert (tmp_path / "sam_y.pth").stat().st_mode & 0o044  # readable by others, as a plain download


# --------------------------------------------------------------------------- class strings
def test_more_than_254_classes_is_refused_at_once(tmp_path, capsys):
    from rs_helpers.ovss.vocabulary import parse_classes

    assert len(parse_classes(";".join(f"class {i}" for i in range(254)))) == 254
    with pytest.raises(BadInputError, match="at most 254 classes: label 255 marks ignored pixels"):
        parse_classes(";".join(f"class {i}" for i in range(255)))
    with pytest.raises(BadInputError, match="at most 254"):
        parse_classes([f"c{i}" for i in range(300)])
    image = _image(tmp_path / "img.png", 32, 32)
    code = main(["ovss", str(image), "--classes", ";".join(f"c{i}" for i in range(255)),
                 "--out", str(tmp_path / "out.png"), "--profile", "tiny"])
    assert code == 2
    assert "at most 254 classes" in _no_traceback(capsys)
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("classes, words", [
    (";;;,,;\n;", "no class names"), ("x" * 400, "characters long"), ("build\x00ing;road", "control character"),
    ("road;\x07bell", "control character"), ("caf\udce9;road", "not UTF-8"), (b"\xff\xfe", "not UTF-8"),
    (["road", 3], "must be a string"), (42, "string or a list"), ("road;Road", "appears in two classes"),
])
def test_class_string_edge_cases(classes, words):
    from rs_helpers.ovss.vocabulary import parse_classes

    with pytest.raises(BadInputError, match=words):
        parse_classes(classes)


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=60),
                 st.text(alphabet=";,\n\r \t\x00\x1fab\udc80é", max_size=40),
                 st.lists(st.text(max_size=10), max_size=5)))
def test_any_class_string_is_a_vocabulary_or_bad_input(classes):
    from rs_helpers.ovss.vocabulary import MAX_CLASSES, MAX_NAME_CHARS, Vocabulary, parse_classes

    try:
        vocab = parse_classes(classes)
    except BadInputError:
        return
    assert isinstance(vocab, Vocabulary) and 1 <= len(vocab) <= MAX_CLASSES
    names = [n for syn in vocab.synonyms for n in syn]
    assert all(n and n == " ".join(n.split()) and len(n) <= MAX_NAME_CHARS for n in names)
    assert all(";" not in n and "," not in n for n in names)
    assert len({n.lower() for n in names}) == len(names)
    "".join(names).encode("utf-8")  # printable anywhere


# --------------------------------------------------------------------------- one bad sample, not fatal
def _complex_raster(path: Path, h: int = 8, w: int = 8) -> Path:
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="complex64") as dst:
            dst.write((np.ones((1, h, w)) * (1 + 2j)).astype("complex64"))
    return path


def _oracle(image, classes, binary):
    return np.zeros(image.rgb.shape[:2], np.uint8)


def test_eval_skips_bad_samples_and_keeps_the_good_scores(tmp_path):
    from rs_helpers.evaluation.datasets.codec import LabelCodec
    from rs_helpers.evaluation.datasets.base import OvssDataset, SegSample
    from rs_helpers.evaluation.ovss_eval import evaluate, format_table

    codec = LabelCodec(values={0: 0, 1: 1})
    labels = np.zeros((8, 8), np.uint8)
    labels[:4] = 1
    good = [SegSample(f"good{i}", _image(tmp_path / f"g{i}.png", 8, 8), fl.write(tmp_path / f"g{i}_gt.png", labels),
                      codec) for i in range(2)]
    png = (tmp_path / "g0.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(png[: len(png) // 3])
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    bad = [SegSample("truncated", tmp_path / "trunc.png", tmp_path / "g0_gt.png", codec, window=(0, 0, 8, 8)),
           SegSample("corrupt", tmp_path / "junk.png", tmp_path / "g0_gt.png", codec),
           SegSample("complex", _complex_raster(tmp_path / "c.tif"), tmp_path / "g0_gt.png", codec),
           SegSample("complex labels", tmp_path / "g0.png", _complex_raster(tmp_path / "cl.tif"), codec),
           SegSample("wrong size", tmp_path / "g0.png", fl.write(tmp_path / "small.png", labels[:4]), codec),
           SegSample("no labels", tmp_path / "g0.png", tmp_path / "gone.png", codec)]

    class Mixed(OvssDataset):
        name, title, kind, classes, needs_root = "mixed", "Mixed", "binary", ["background", "building"], False

        def find(self, root):
            return self._samples

    Mixed._samples = good
    clean = evaluate(Mixed(), _oracle, progress=False)
    Mixed._samples = [bad[0], good[0], *bad[1:], good[1]]
    report = evaluate(Mixed(), _oracle, progress=False)
    assert report.groups[0].value == clean.groups[0].value and report.groups[0].n_images == 2
    assert report.groups[0].confusion.matrix.tolist() == clean.groups[0].confusion.matrix.tolist()
    skipped = dict(report.skipped)
    assert set(skipped) == {s.id for s in bad}
    assert "complex" in skipped["complex"] and "complex" in skipped["complex labels"]
    assert "labels are 8x4" in skipped["wrong size"] and "no such file" in skipped["no labels"]
    assert "readable" in skipped["corrupt"] and "truncated" in skipped["truncated"]
    summary = report.summary()
    assert summary["n_skipped"] == 6 and {s["id"] for s in summary["skipped"]} == set(skipped)
    assert "6 skipped" in format_table(report)


def test_eval_still_stops_for_missing_weights_and_ctrl_c(tmp_path):
    from rs_helpers.evaluation.datasets import get_dataset
    from rs_helpers.evaluation.ovss_eval import evaluate

    ds = get_dataset("loveda", fl.make_loveda(tmp_path).root)
    for stop in (KeyboardInterrupt(), WeightsUnavailableError("no weights")):
        def segmenter(image, classes, binary, stop=stop):
            raise stop

        with pytest.raises(type(stop)):
            evaluate(ds, segmenter, progress=False)


def test_unreadable_tile_is_a_skipped_sample_not_a_dataset_error(tmp_path):
    from rs_helpers.evaluation.datasets import get_dataset
    from rs_helpers.evaluation.ovss_eval import evaluate

    fake = fl.make_inria_published(tmp_path)
    tile = next((fake.root / "AerialImageDataset/train/images").glob("*.tif"), None) or \
        next(fake.root.rglob("images/*.tif"))
    tile.write_bytes(b"II*\x00 truncated tiff")
    ds = get_dataset("inria", fake.root, split=fake.split)
    report = evaluate(ds, _oracle, progress=False)
    assert report.skipped and all("readable" in why for _, why in report.skipped)


def test_eval_ovss_command_skips_a_corrupt_image(tmp_path, capsys):
    fake = fl.make_loveda(tmp_path)
    (fake.root / "img_dir/val/1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "eval.json"
    code = main(["eval", "ovss", "--dataset", "loveda", "--root", str(fake.root), "--profile", "tiny",
                 "--max-side", "96", "--points-per-side", "4", "--templates", "single", "--no-progress",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "1 skipped" in printed and "Traceback" not in printed
    data = json.loads(out.read_text())
    assert data["n_skipped"] == 1 and data["skipped"][0]["id"] == "1" and "1.png" in data["skipped"][0]["error"]


def _oracle_predict(rgb):
    def predict(points, labels):
        out = np.zeros(rgb.shape[:2], bool)
        for (x, y), label in zip(points, labels):
            if label:
                out[max(0, y - 2): y + 3, max(0, x - 2): x + 3] = True
        return out

    return predict


def test_lora_data_skips_bad_samples_and_lists_them(tmp_path):
    from rs_helpers.lora.data import build_examples

    mask = np.zeros((16, 16), np.uint8)
    mask[4:9, 4:9] = 255
    mask_path = fl.write(tmp_path / "m.png", mask)
    good = _image(tmp_path / "good.png")
    (tmp_path / "junk.png").write_bytes(b"junk")

    def rec(rid, image, target=mask_path):
        return ReferringSample(id=rid, image=image, text="the roof", task="referring", target_class="",
                               mask=target, bbox_xyxy=(0, 0, 1, 1))

    records = [rec("bad image", tmp_path / "junk.png"), rec("ok", good),
               rec("complex", _complex_raster(tmp_path / "c.tif", 16, 16)),
               rec("complex mask", good, _complex_raster(tmp_path / "cm.tif", 16, 16)),
               rec("missing", tmp_path / "nope.png")]
    with pytest.warns(UserWarning, match="skipped"):
        summary = build_examples(records, make_predict=_oracle_predict, n_clicks=2, progress=False,
                                 source={"dataset": "samples"})
    assert [e["id"] for e in summary.examples] == ["ok"]
    assert sorted(rid for rid, _ in summary.skipped) == ["bad image", "complex", "complex mask", "missing"]
    assert all(reason for _, reason in summary.skipped)
