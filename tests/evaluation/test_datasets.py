"""Benchmark loaders on tiny fake folders with the real layouts: discovery, split selection,
label decoding (class mapping, ignore index, colours, binary thresholds), crop windows, errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fake_layouts as fl
from rs_helpers.evaluation.datasets import (
    IGNORE,
    OVSS_BENCHMARKS,
    ROOT_ENV,
    LabelCodec,
    crop_boxes,
    crops,
    dataset_class,
    get_dataset,
    get_referring_dataset,
    list_datasets,
)
from rs_helpers.evaluation.datasets.crops import crop_boxes as _crop_boxes
from rs_helpers.evaluation.datasets.rrsisd import rle_decode, rle_encode
from rs_helpers.errors import BadInputError


def _load(fake, monkeypatch):
    cls = dataset_class(fake.name)
    for attr, value in fake.attrs.items():
        monkeypatch.setattr(cls, attr, value)
    return get_dataset(fake.name, root=fake.root, split=fake.split)


def _check(fake, ds):
    assert len(ds) == fake.n, [s.id for s in ds]
    sample = next(s for s in ds if s.id == fake.sample_id)
    image, labels = sample.load()
    assert image.rgb.dtype == np.uint8 and image.rgb.shape[2] == 3
    assert labels.dtype == np.uint8 and labels.shape == image.rgb.shape[:2]
    np.testing.assert_array_equal(labels, fake.expected)
    assert labels.max() < len(ds.classes) or labels.max() == IGNORE


# --------------------------------------------------------------------------- registry
def test_registry_lists_the_17_benchmarks_and_samples():
    assert len(OVSS_BENCHMARKS) == 17
    assert list_datasets("ovss") == OVSS_BENCHMARKS + ["samples"]
    assert set(list_datasets("referring")) == {"rrsisd", "refsegrs", "earthreason", "samples", "jsonl"}
    with pytest.raises(BadInputError):
        list_datasets("nope")


@pytest.mark.parametrize("alias,name", [("WHU_Aerial", "whu-aerial"), ("xBD", "xbd-pre"), ("WHU-Sat.II", "whu-sat-ii"),
                                        ("CHN6_CUG", "chn6-cug"), ("OpenEarthMap", "openearthmap"), ("wbs", "wbs-si")])
def test_names_are_normalised(alias, name):
    assert dataset_class(alias).name == name


def test_unknown_name_lists_choices():
    with pytest.raises(BadInputError, match="loveda"):
        get_dataset("nonexistent", root=".")


def test_protocol_facts_match_method_md():
    assert dataset_class("openearthmap").classes[-1] == "building,roof,house"
    assert dataset_class("potsdam").classes == ["road,parking lot", "building", "low vegetation", "tree", "car",
                                                "clutter,background"]
    assert dataset_class("isaid").classes[2] == "store tank" and len(dataset_class("isaid").classes) == 16
    assert dataset_class("udd5").classes[-1] == "background"
    for name, target in (("inria", "building"), ("deepglobe", "road"), ("wbs-si", "water")):
        cls = dataset_class(name)
        assert cls.kind == "binary" and cls.classes == ["background", target]
    assert (dataset_class("loveda").paper, dataset_class("loveda").segearth_ov) == (38.2, 36.9)
    assert (dataset_class("vaihingen").paper, dataset_class("vaihingen").segearth_ov) == (40.6, 29.1)
    assert dataset_class("spacenet").paper is None and dataset_class("spacenet").segearth_ov == 23.8
    kinds = [dataset_class(n).kind for n in OVSS_BENCHMARKS]
    assert kinds.count("multiclass") == 8 and kinds.count("binary") == 9


# --------------------------------------------------------------------------- every loader
@pytest.mark.parametrize("make", fl.OVSS_FAKES, ids=lambda f: f.__name__[5:])
def test_loader_reads_its_layout(make, tmp_path, monkeypatch):
    fake = make(tmp_path)
    _check(fake, _load(fake, monkeypatch))


@pytest.mark.parametrize("make", fl.PUBLISHED_FAKES, ids=lambda f: f.__name__[5:])
def test_loader_reads_the_published_layout(make, tmp_path, monkeypatch):
    fake = make(tmp_path)
    _check(fake, _load(fake, monkeypatch))


@pytest.mark.parametrize("name", OVSS_BENCHMARKS)
def test_wrong_root_names_the_expected_layout(name, tmp_path):
    (tmp_path / "something_else").mkdir()
    with pytest.raises(BadInputError) as err:
        get_dataset(name, root=tmp_path)
    message = str(err.value)
    assert "Expected layout" in message and dataset_class(name).title in message
    assert "/" in message.split("Expected layout", 1)[1]  # a tree, not just a name


def test_missing_root_and_env(tmp_path, monkeypatch):
    monkeypatch.delenv(ROOT_ENV, raising=False)
    with pytest.raises(BadInputError, match="--root"):
        get_dataset("loveda")
    with pytest.raises(BadInputError, match="not a folder"):
        get_dataset("loveda", root=tmp_path / "absent")
    fake = fl.make_loveda(tmp_path)
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))  # the benchmarks folder holding LoveDA/
    assert len(get_dataset("loveda")) == fake.n


def test_split_selection_and_bad_split(tmp_path):
    fl.make_loveda(tmp_path)
    assert [s.id for s in get_dataset("loveda", tmp_path / "LoveDA", split="train")] == ["2"]
    with pytest.raises(BadInputError, match="no split"):
        get_dataset("loveda", tmp_path / "LoveDA", split="test")


def test_missing_labels_are_skipped_with_a_warning(tmp_path):
    fake = fl.make_vdd(tmp_path)
    fl.write(fake.root / "test/src/orphan.JPG", fl.rgb())
    with pytest.warns(UserWarning, match="no label"):
        ds = get_dataset("vdd", fake.root)
    assert len(ds) == fake.n


def test_binary_cvt_and_raw_masks(tmp_path):
    root = tmp_path / "WHU-BD"
    fl.pair(root / "val/image/a.png", root / "val/label/a.png", fl.halves(fg=1))  # 0/1 in a raw folder
    ds = get_dataset("whu-aerial", root)
    np.testing.assert_array_equal(ds[0].load_labels(), fl.halves(fg=1))
    fl.pair(root / "val/image/a.png", root / "val/label_cvt/a.png", fl.halves(fg=1))
    ds = get_dataset("whu-aerial", root)
    assert ds[0].label.parent.name == "label_cvt" and ds[0].codec.threshold == 1


def test_wbs_si_val_list_override(tmp_path):
    fake = fl.make_wbs_si(tmp_path)
    root = fake.root / "WaterBodiesDatasetPreprocessed"
    (root / "val.txt").write_text("water_body_1\n")
    assert [s.id for s in get_dataset("wbs-si", root)] == ["water_body_1"]
    assert len(get_dataset("wbs-si", root, split="all")) == 3


def test_samples_need_no_root():
    ds = get_dataset("samples")
    assert len(ds) == 13 and ds.root is None
    groups = {ds.group_of(s) for s in ds}
    assert groups == {"dubai", "chesapeake", "atlanta_buildings", "vegas_roads"}
    roads = next(s for s in ds if s.id == "vegas_roads")
    assert ds.is_binary(roads) and ds.vocabulary_for(roads) == ["background", "road,street"]
    image, labels = roads.load()
    assert set(np.unique(labels)) <= {0, 1}


# --------------------------------------------------------------------------- label codecs
def test_codec_values_colours_and_thresholds():
    codec = LabelCodec(values={1: 0, 2: 1})
    np.testing.assert_array_equal(codec.decode(np.array([[0, 1, 2, 300]])), [[IGNORE, 0, 1, IGNORE]])
    colour = LabelCodec(colours={(255, 0, 0): 2}, unknown=0)
    np.testing.assert_array_equal(colour.decode(np.array([[[255, 0, 0], [1, 2, 3]]])), [[2, 0]])
    auto = LabelCodec(threshold="auto")
    np.testing.assert_array_equal(auto.decode(np.array([[0, 1]])), [[0, 1]])
    np.testing.assert_array_equal(auto.decode(np.array([[0, 1, 127, 128, 255]])), [[0, 0, 0, 1, 1]])
    with pytest.raises(BadInputError, match="colour"):
        LabelCodec(values={0: 0}).decode(np.array([[[255, 0, 0]]]))
    grey = np.dstack([np.array([[1, 2]])] * 3)
    np.testing.assert_array_equal(LabelCodec(values={1: 0, 2: 1}).decode(grey), [[0, 1]])


def test_label_image_size_mismatch_is_reported(tmp_path):
    root = tmp_path / "VDD"
    fl.write(root / "test/src/a.JPG", fl.rgb(8, 8))
    fl.write(root / "test/gt/a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(BadInputError, match="labels are 4x4"):
        get_dataset("vdd", root)[0].load()


# --------------------------------------------------------------------------- crops
def test_crop_counts_follow_the_mmseg_converters():
    assert len(crop_boxes(6000, 6000, 512, 256, "clip")) == 144  # Potsdam: 2016 crops / 14 tiles
    boxes = crop_boxes(6000, 6000, 512, 256, "clip")
    assert boxes[0] == (0, 0, 512, 512) and boxes[-1] == (5488, 5488, 6000, 6000)
    assert len(crop_boxes(2160, 3840, (1080, 1280), (1080, 1280), "slide")) == 6  # UAVid frame
    assert len(crop_boxes(5000, 5000, 1000, 1000, "clip")) == 25  # Inria tile
    small = crop_boxes(500, 1000, 896, 512, "slide")  # iSAID image smaller than a patch: padded
    assert small == [(0, 0, 896, 896), (104, 0, 1000, 896)]
    with pytest.raises(ValueError):
        crop_boxes(10, 10, 0, 1)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 300), w=st.integers(1, 300), size=st.integers(1, 64), stride=st.integers(1, 64),
       scheme=st.sampled_from(["clip", "grid", "slide"]))
def test_crops_cover_the_tile(h, w, size, stride, scheme):
    boxes = _crop_boxes(h, w, size, stride, scheme)
    covered = np.zeros((max(h, size), max(w, size)), bool)
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 and 0 <= y0 < y1
        covered[y0:y1, x0:x1] = True
    if stride <= size:  # a stride larger than the crop leaves gaps by design
        assert covered[:h, :w].all()
    assert len(boxes) == len(set(boxes))


def test_crops_yield_padded_arrays():
    array = np.arange(12 * 10).reshape(12, 10)
    out = list(crops(array, 8, 4, "slide", pad_value=-1))
    assert all(c.shape == (8, 8) for _, c in out)
    out = list(crops(array, 8, 8, "grid"))
    assert [b for b, _ in out] == [(0, 0, 8, 8), (2, 0, 10, 8), (0, 4, 8, 12), (2, 4, 10, 12)]


# --------------------------------------------------------------------------- referring sets
def test_rrsisd_splits_and_masks(tmp_path):
    fake = fl.make_rrsisd(tmp_path)
    for split, expected in (("train", fake["polygon"]), ("val", fake["rle"]), ("test", fake["rle"])):
        ds = get_referring_dataset("rrsisd", root=fake["root"], split=split)
        assert len(ds) == 1
        sample = ds[0]
        assert sample.text == f"the {split} vehicle" and sample.task == "referring"
        assert sample.target_class == "vehicle" and sample.bbox_xyxy == (2, 3, 9, 12)
        image, mask = sample.load()
        assert mask.dtype == bool and mask.shape == (16, 16) == image.rgb.shape[:2]
        np.testing.assert_array_equal(mask, expected)
    assert get_referring_dataset("RRSIS-D", root=tmp_path, split="test").root == fake["root"]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.data())
def test_rle_round_trip(h, w, data):
    bits = data.draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w))
    mask = np.array(bits, bool).reshape(h, w)
    encoded = rle_encode(mask)
    assert isinstance(encoded["counts"], str)
    np.testing.assert_array_equal(rle_decode(encoded), mask)


def test_rle_known_string():
    # pycocotools encodes a 4 x 4 mask with rows 1-2, cols 1-2 set as "52203"
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    assert rle_encode(mask)["counts"] == "52203"
    np.testing.assert_array_equal(rle_decode({"size": [4, 4], "counts": "52203"}), mask)


def test_refsegrs(tmp_path):
    fake = fl.make_refsegrs(tmp_path)
    ds = get_referring_dataset("refsegrs", root=fake["root"])
    assert [s.id for s in ds] == ["refsegrs_0", "refsegrs_1", "refsegrs_1_1"]
    assert ds[1].text == "a white car" and ds[1].bbox_xyxy is None
    image, mask = ds[0].load()
    assert mask.sum() == 16 and mask[:4, :4].all()
    assert [s.text for s in get_referring_dataset("refsegrs", root=tmp_path, split="val")] == ["the vegetation"]


def test_earthreason(tmp_path):
    fake = fl.make_earthreason(tmp_path)
    ds = get_referring_dataset("earthreason", root=fake["root"])
    assert [s.id for s in ds] == ["earthreason_test_a", "earthreason_test_b"]
    a, b = ds
    assert a.task == "reasoning" and a.text == "where could a boat dock (a)?" and a.answer == "the harbour"
    assert b.answer == "" and not b.load()[1].any()
    assert a.load()[1].sum() == 16
    assert len(ds.expand_questions()) == 4 and ds.expand_questions()[1].text == "which area suits a ferry?"
    assert len(get_referring_dataset("earthreason", root=tmp_path, split="val")) == 2  # val/val/ layout


@pytest.mark.parametrize("name", ["rrsisd", "refsegrs", "earthreason"])
def test_referring_wrong_root(name, tmp_path):
    with pytest.raises(BadInputError, match="Expected layout"):
        get_referring_dataset(name, root=tmp_path)


def test_referring_samples_and_reported_numbers():
    ds = get_referring_dataset("samples")
    assert len(ds) > 0 and all(s.mask.is_file() for s in ds)
    from rs_helpers.evaluation.datasets.rrsisd import RRSISD

    assert RRSISD.reported["paper: LoRA Qwen3-VL-2B"] == {"val": 68.1, "test": 67.6}


@pytest.mark.parametrize("polygon,size,coco_rle", [
    ([1.2, 0.7, 9.6, 3.1, 4.4, 8.8], 10, "e0372O2MO1N3N1O8"),  # strings produced by pycocotools
    ([-3.0, 2.0, 12.5, 2.0, 12.5, 7.0], 10, "219001O00001O00001O0N"),
])
def test_polygons_rasterise_as_pycocotools(polygon, size, coco_rle):
    from rs_helpers.evaluation.datasets.rrsisd import polygons_to_mask

    expected = rle_decode({"size": [size, size], "counts": coco_rle})
    np.testing.assert_array_equal(polygons_to_mask([polygon], size, size), expected)


# --------------------------------------------------------------------------- jsonl (lora-data files)
def _jsonl(path, lines):
    import json

    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_jsonl_dataset_returns_the_source_records_in_file_order(tmp_path):
    refsegrs = fl.make_refsegrs(tmp_path)["root"]
    earth = fl.make_earthreason(tmp_path)["root"]
    shipped = get_referring_dataset("samples")
    src = {"dataset": "refsegrs", "root": str(refsegrs), "split": "test"}
    path = _jsonl(tmp_path / "held.jsonl", [
        {"id": "refsegrs_1_1", "text": "x", **src},
        {"id": shipped[2].id, "dataset": "samples", "root": None, "split": "all"},
        "",
        {"id": "refsegrs_0", **src},
        {"id": "earthreason_test_a_q1", "dataset": "earthreason", "root": str(earth), "split": "test"},  # --all-questions
    ])
    ds = get_referring_dataset("jsonl", root=path)
    assert [s.id for s in ds] == ["refsegrs_1_1", shipped[2].id, "refsegrs_0", "earthreason_test_a_q1"]
    assert ds[0].text == "another car" and ds[3].text == "which area suits a ferry?"
    assert ds[2].load()[1].sum() == 16
    assert ds.reported == {} and ds.split == "all" and len(ds.lines) == 4
    assert "refsegrs test" in ds.title and "samples all" in ds.title
    # a relative root is read from the file's folder
    rel = _jsonl(tmp_path / "rel.jsonl", [{"id": "refsegrs_0", "dataset": "refsegrs",
                                          "root": refsegrs.relative_to(tmp_path).as_posix(), "split": "test"}])
    assert [s.id for s in get_referring_dataset("jsonl", root=rel)] == ["refsegrs_0"]


def test_jsonl_dataset_bad_lines_name_the_line(tmp_path):
    refsegrs = fl.make_refsegrs(tmp_path)["root"]
    good = {"id": "refsegrs_0", "dataset": "refsegrs", "root": str(refsegrs), "split": "test"}
    cases = [
        ([good, {"id": "refsegrs_0", "text": "no provenance"}], r"line 2: no provenance"),
        ([good, {**good, "dataset": None}], r"line 2: no provenance"),
        ([{**good, "id": "refsegrs_99"}], r"line 1: id 'refsegrs_99' is not in refsegrs split test"),
        ([good, "", {**good, "root": str(tmp_path / "gone")}], r"line 3: cannot open refsegrs"),
        (["{not json"], r"line 1: not JSON"),
        ([{**good, "id": None}], r"line 1: no \"id\""),
    ]
    for lines, message in cases:
        with pytest.raises(BadInputError, match=message):
            get_referring_dataset("jsonl", root=_jsonl(tmp_path / "bad.jsonl", lines))
    rrsisd = fl.make_rrsisd(tmp_path)["root"]
    (rrsisd / "images/rrsisd/JPEGImages/00003.jpg").unlink()
    line = {"id": "rrsisd_3", "dataset": "rrsisd", "root": str(rrsisd), "split": "test"}
    with pytest.raises(BadInputError, match=r"line 2: rrsisd_3: image file .*00003.jpg is missing"):
        get_referring_dataset("jsonl", root=_jsonl(tmp_path / "bad.jsonl", [good, line]))
    with pytest.raises(BadInputError, match="no such file"):
        get_referring_dataset("jsonl", root=tmp_path / "missing.jsonl")
    with pytest.raises(BadInputError, match="--root FILE.jsonl"):
        get_referring_dataset("jsonl")
    with pytest.raises(BadInputError, match="holds no lines"):
        get_referring_dataset("jsonl", root=_jsonl(tmp_path / "empty.jsonl", [""]))
