"""SAM 2.1 and SAM 3 tracker loading: the tiny models (build, run, announce themselves, seeded), model ids
and size words, the real loading path on a saved folder, and every way of not getting the weights as exit 3."""
from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

import rs_helpers.models.sam3 as sam3_module
from rs_helpers.errors import BadInputError, WeightsUnavailableError
from rs_helpers.models.sam_tracker import (
    DEFAULT_SAM2,
    TINY_IDS,
    TINY_INPUT,
    build_tiny_click_segmenter,
    load_click_segmenter,
    resolve_model_id,
    sam2_status,
)

KINDS = ("sam2", "sam3")


@pytest.fixture(scope="module")
def tiny():
    return {kind: load_click_segmenter(kind, profile="tiny", device="cpu") for kind in KINDS}


def _run(bundle, point=(100.0, 60.0), multimask=True):
    image = torch.linspace(0, 255, TINY_INPUT * TINY_INPUT * 3).reshape(TINY_INPUT, TINY_INPUT, 3).byte().numpy()
    inputs = bundle.processor(images=image, input_points=[[[list(point)]]], input_labels=[[[1]]], return_tensors="pt")
    with torch.no_grad():
        return bundle.model(**inputs, multimask_output=multimask)


@pytest.mark.parametrize("kind", KINDS)
def test_the_tiny_model_builds_runs_and_announces_itself(kind, capsys, monkeypatch):
    monkeypatch.setattr("rs_helpers.profile._announced", set())
    bundle = load_click_segmenter(kind, profile="tiny", device="cpu")
    err = capsys.readouterr().err
    assert "TINY PROFILE" in err and ("SAM 2.1" if kind == "sam2" else "SAM 3 tracker") in err
    assert bundle.tiny and bundle.kind == kind and bundle.model_id == TINY_IDS[kind]
    assert bundle.dtype == torch.float32 and not bundle.model.training
    out = _run(bundle)
    assert out.pred_masks.shape == (1, 1, 3, 64, 64) and out.iou_scores.shape == (1, 1, 3)
    assert out.pred_masks.abs().mean() > 0.1  # livened: crisp logits, not 1e-5
    assert _run(bundle, multimask=False).pred_masks.shape == (1, 1, 1, 64, 64)


@pytest.mark.parametrize("kind", KINDS)
def test_the_tiny_model_is_deterministic_and_leaves_the_global_rng_alone(kind):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, _ = build_tiny_click_segmenter(kind)
    after = torch.rand(1)
    b, _ = build_tiny_click_segmenter(kind)
    assert torch.equal(before, after)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_requested_dtype_is_used():
    bundle = load_click_segmenter("sam2", profile="tiny", device="cpu", dtype=torch.bfloat16)
    assert bundle.dtype == torch.bfloat16 and next(bundle.model.parameters()).dtype == torch.bfloat16


def test_model_ids_size_words_and_folders_resolve(tmp_path):
    assert resolve_model_id("sam2") == DEFAULT_SAM2 == "facebook/sam2.1-hiera-large"
    assert resolve_model_id("sam2", "base-plus") == "facebook/sam2.1-hiera-base-plus"
    assert resolve_model_id("sam2", "Small") == "facebook/sam2.1-hiera-small"
    assert resolve_model_id("sam3") == resolve_model_id("sam3", "") == "facebook/sam3"
    assert resolve_model_id("sam3", "small") == "small"  # size words are SAM 2.1's
    assert resolve_model_id("sam2", str(tmp_path)) == str(tmp_path.resolve())
    with pytest.raises(BadInputError, match="sam2, sam3"):
        resolve_model_id("sam4")


@pytest.mark.parametrize("kind", KINDS)
def test_a_saved_tiny_model_loads_through_the_full_profile_folder_path(kind, tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(sam3_module, "host_reachable", lambda host: pytest.fail("the network was asked"))
    folder = tmp_path / kind
    tiny[kind].model.save_pretrained(folder)
    tiny[kind].processor.save_pretrained(folder)
    loaded = load_click_segmenter(kind, str(folder), profile="full", device="cpu")
    assert not loaded.tiny and loaded.kind == kind and loaded.model_id == str(folder.resolve())
    assert loaded.dtype == torch.float32  # fp32 on the CPU
    a, b = _run(tiny[kind]), _run(loaded)
    assert torch.allclose(a.pred_masks, b.pred_masks) and torch.allclose(a.iou_scores, b.iou_scores)
    # under the tiny profile too, a folder is loaded, not replaced by the random model
    assert not load_click_segmenter(kind, str(folder), profile="tiny", device="cpu").tiny


def test_a_folder_of_the_other_family_or_without_config_is_a_bad_input(tmp_path, tiny):
    folder = tmp_path / "sam2"
    tiny["sam2"].model.save_pretrained(folder)
    with pytest.raises(BadInputError, match="use --segmenter sam2"):
        load_click_segmenter("sam3", str(folder), profile="full", device="cpu")
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "config.json").write_text(json.dumps({"model_type": "clip"}))
    with pytest.raises(BadInputError, match="holds a clip model"):
        load_click_segmenter("sam2", str(tmp_path / "clip"), profile="full", device="cpu")
    with pytest.raises(BadInputError, match="no config.json"):
        load_click_segmenter("sam2", str(tmp_path / "clip" / ".."), profile="full", device="cpu")


def test_an_id_that_is_neither_a_hub_id_nor_a_folder_is_a_bad_input(monkeypatch):
    monkeypatch.setattr(sam3_module, "host_reachable", lambda host: pytest.fail("the network was asked"))
    with pytest.raises(BadInputError, match="size word"):
        load_click_segmenter("sam2", "not a/valid id!!", profile="full", device="cpu")
    with pytest.raises(BadInputError, match="neither a hub id"):
        load_click_segmenter("sam3", "/no/such/folder", profile="full", device="cpu")


def _no_token_and_an_empty_cache(monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_the_gated_sam3_without_a_token_is_exit_3_at_once_naming_the_licence(monkeypatch, tmp_path):
    _no_token_and_an_empty_cache(monkeypatch, tmp_path)
    monkeypatch.setattr(sam3_module, "host_reachable", lambda host: pytest.fail("the network was asked"))
    with pytest.raises(WeightsUnavailableError, match="no Hugging Face token") as info:
        load_click_segmenter("sam3", profile="full", device="cpu")
    message = str(info.value)
    assert info.value.exit_code == 3 and "\n" not in message
    assert "accept its licence on https://huggingface.co/facebook/sam3" in message and "--profile tiny" in message


def test_sam2_offline_without_the_cache_is_exit_3(monkeypatch, tmp_path):
    _no_token_and_an_empty_cache(monkeypatch, tmp_path)
    with pytest.raises(WeightsUnavailableError, match="offline and not in the cache") as info:
        load_click_segmenter("sam2", "tiny", profile="full", device="cpu")
    assert "SAM 2.1 weights facebook/sam2.1-hiera-tiny" in str(info.value) and info.value.exit_code == 3


@pytest.mark.parametrize("kind", KINDS)
def test_every_hub_failure_while_loading_is_one_exit_3_message(kind, monkeypatch):
    from rs_helpers.models.sam_tracker import _classes

    monkeypatch.setattr(sam3_module, "sam3_status", lambda model_id: {"cached": True, "token": True})
    monkeypatch.setattr(sam3_module, "host_reachable", lambda host: True)

    def refuse(*args, **kwargs):
        raise OSError("401 Client Error: Unauthorized for url: https://huggingface.co/x (invalid token)")

    for cls in _classes(kind):
        monkeypatch.setattr(cls, "from_pretrained", classmethod(lambda cls, *a, **k: refuse()))
    with pytest.raises(WeightsUnavailableError, match="token was refused") as info:
        load_click_segmenter(kind, profile="full", device="cpu")
    assert "\n" not in str(info.value) and "hf auth login" in str(info.value)


def test_the_status_for_doctor_reads_the_cache_without_the_network(monkeypatch, tmp_path):
    import huggingface_hub

    from rs_helpers.models.doctor import sam2_check

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(sam3_module, "host_reachable", lambda host: pytest.fail("the network was asked"))
    assert not sam2_status()["cached"] and not sam2_status()["gated"]
    assert sam2_check().value == f"{DEFAULT_SAM2}: weights not cached (hf-hub:{DEFAULT_SAM2})"
    snapshot = tmp_path / "models--facebook--sam2.1-hiera-large" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (tmp_path / "models--facebook--sam2.1-hiera-large" / "refs").mkdir()
    (tmp_path / "models--facebook--sam2.1-hiera-large" / "refs" / "main").write_text("0" * 40)
    for name in ("config.json", "model.safetensors"):
        (snapshot / name).write_text("{}")
    assert sam2_status()["cached"] and sam2_check().value == f"{DEFAULT_SAM2}: weights cached"
