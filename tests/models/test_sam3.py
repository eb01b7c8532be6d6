"""SAM 3 loading: the tiny model (builds, runs, announces itself), its offline CLIP tokenizer (the
ids of open_clip's), the real loading path on a saved folder, and every hub failure as exit 3."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "Sam3Model"):  # pragma: no cover - the floor (5.4) has it
    pytest.skip(f"transformers {transformers.__version__} has no Sam3Model (SAM 3 needs transformers >= 5.4)",
                allow_module_level=True)

import rs_helpers.models.sam3 as sam3_module
from rs_helpers.errors import BadInputError, WeightsUnavailableError
from rs_helpers.models.sam3 import (
    TINY_INPUT,
    TINY_QUERIES,
    build_clip_tokenizer,
    build_tiny_sam3,
    load_sam3,
    sam3_status,
)

LICENCE = "https://huggingface.co/facebook/sam3"


@pytest.fixture(scope="module")
def tiny():
    return load_sam3(profile="tiny", device="cpu")


def _run(bundle, prompt="building"):
    tokens = bundle.tokenizer([prompt], padding="max_length", max_length=32, return_tensors="pt")
    with torch.no_grad():
        return bundle.model(pixel_values=torch.zeros(1, 3, bundle.input_size, bundle.input_size),
                            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])


def test_the_tiny_sam3_builds_runs_and_announces_itself(capsys, monkeypatch):
    monkeypatch.setattr("rs_helpers.profile._announced", set())
    bundle = load_sam3(profile="tiny", device="cpu")
    err = capsys.readouterr().err
    assert "TINY PROFILE" in err and "SAM 3" in err and "MEANINGLESS" in err
    assert bundle.tiny and bundle.model_id == "tiny-sam3" and bundle.dtype == torch.float32
    assert bundle.input_size == TINY_INPUT == bundle.processor.image_processor.size["height"]
    out = _run(bundle)
    assert out.pred_logits.shape == (1, TINY_QUERIES)
    assert out.pred_masks.shape == (1, TINY_QUERIES, 64, 64)
    assert out.semantic_seg.shape == (1, 1, 64, 64) and out.presence_logits.shape == (1, 1)
    # livened: confident presence, some queries above a 0.5 object score, masks with a few units of logit
    score = out.pred_logits.sigmoid() * out.presence_logits.sigmoid()
    assert out.presence_logits.sigmoid().item() > 0.8 and bool((score > 0.5).any())
    assert out.pred_masks.std().item() > 1.0


def test_the_tiny_sam3_is_deterministic_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, _ = build_tiny_sam3()
    after = torch.rand(1)
    b, _ = build_tiny_sam3()
    assert torch.equal(before, after)
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), name


def test_a_requested_dtype_is_used_by_the_tiny_model():
    bundle = load_sam3(profile="tiny", device="cpu", dtype=torch.bfloat16)
    assert bundle.dtype == torch.bfloat16 and next(bundle.model.parameters()).dtype == torch.bfloat16


PHRASES = ["building", "Low vegetation, TREES!", "a photo of a café's roof", "barren,bareland,soil",
           "road  with\ttabs and 123 digits", "ground track field", "store-tank (large) & ship's harbor",
           " ".join(["swimming pool"] * 20)]  # longer than 32 tokens: truncated, end of text kept


def test_the_offline_tokenizer_gives_the_token_ids_of_open_clip():
    import open_clip

    reference = open_clip.tokenizer.SimpleTokenizer()(PHRASES, context_length=32)
    tokens = build_clip_tokenizer()(PHRASES, padding="max_length", max_length=32, truncation=True,
                                    return_tensors="pt")
    for i, phrase in enumerate(PHRASES):
        ours = tokens["input_ids"][i][tokens["attention_mask"][i].bool()].tolist()
        theirs = reference[i][reference[i] != 0].tolist()  # open_clip pads with 0
        assert ours == theirs, phrase
    assert tokens["input_ids"].shape == (len(PHRASES), 32)
    assert tokens["input_ids"][-1, -1].item() == 49407  # end of text survives truncation


def test_the_tokenizer_numbers_the_vocabulary_like_open_clip():
    import open_clip

    ref = open_clip.tokenizer.SimpleTokenizer()
    vocab, merges = sam3_module.clip_vocabulary()
    assert len(vocab) == len(ref.encoder) == 49408 and len(merges) == 48894
    assert vocab["<|startoftext|>"] == ref.encoder["<start_of_text>"] == 49406
    assert vocab["<|endoftext|>"] == ref.encoder["<end_of_text>"] == 49407
    assert all(vocab[t] == i for t, i in ref.encoder.items() if not t.startswith("<"))


def test_a_saved_folder_loads_through_the_real_path_with_the_same_outputs(tmp_path, tiny):
    folder = tmp_path / "sam3"
    tiny.model.save_pretrained(folder)
    tiny.processor.save_pretrained(folder)
    loaded = load_sam3(str(folder), profile="full", device="cpu")
    assert not loaded.tiny and loaded.dtype == torch.float32 and loaded.input_size == TINY_INPUT
    a, b = _run(tiny, "water"), _run(loaded, "water")
    assert torch.allclose(a.pred_masks, b.pred_masks) and torch.allclose(a.pred_logits, b.pred_logits)


def test_a_folder_without_config_is_a_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="no config.json"):
        load_sam3(str(tmp_path), profile="full", device="cpu")


def _gated_error():
    from huggingface_hub.errors import GatedRepoError

    message = ("403 Client Error. Cannot access gated repo for url https://huggingface.co/facebook/sam3/resolve/"
               "main/config.json. Access to model facebook/sam3 is restricted and you are not in the authorized list.")
    try:
        return GatedRepoError(message, response=SimpleNamespace(headers={}, request=None))
    except TypeError:  # another huggingface_hub signature
        err = GatedRepoError.__new__(GatedRepoError)
        OSError.__init__(err, message)
        return err


@pytest.fixture
def hub_reachable(monkeypatch):
    """As if the weights were cached and the hub reachable, so that loading reaches from_pretrained."""
    monkeypatch.setattr(sam3_module, "sam3_status", lambda model_id: {"cached": True, "token": True})
    monkeypatch.setattr(sam3_module, "host_reachable", lambda host: True)


@pytest.mark.parametrize("error", [
    "gated",
    OSError("You are trying to access a gated repo.\nMake sure to have access to it at https://huggingface.co/facebook/sam3."),
    OSError("We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in the cached files."),
    OSError("401 Client Error: Unauthorized for url: https://huggingface.co/facebook/sam3 (invalid token)"),
])
def test_every_hub_failure_is_one_exit_3_message_with_the_licence_page(monkeypatch, hub_reachable, error):
    from transformers import Sam3Model, Sam3Processor

    exc = _gated_error() if error == "gated" else error

    def refuse(*args, **kwargs):
        raise exc

    monkeypatch.setattr(Sam3Processor, "from_pretrained", classmethod(lambda cls, *a, **k: refuse()))
    monkeypatch.setattr(Sam3Model, "from_pretrained", classmethod(lambda cls, *a, **k: refuse()))
    with pytest.raises(WeightsUnavailableError) as info:
        load_sam3("facebook/sam3", profile="full", device="cpu")
    message = str(info.value)
    assert info.value.exit_code == 3 and "\n" not in message
    assert LICENCE in message and "hf auth login" in message and "HF_TOKEN" in message
    assert "--profile tiny" in message


def test_without_a_token_the_gated_model_fails_at_once_without_the_network(monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))

    def no_network(host):
        raise AssertionError("the network was asked")

    monkeypatch.setattr(sam3_module, "host_reachable", no_network)
    with pytest.raises(WeightsUnavailableError, match="no Hugging Face token") as info:
        load_sam3(profile="full", device="cpu")
    assert LICENCE in str(info.value) and info.value.exit_code == 3


def test_offline_without_the_cache_is_exit_3(monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(sam3_module, "host_reachable", lambda host: False)
    with pytest.raises(WeightsUnavailableError, match="offline") as info:
        load_sam3(profile="full", device="cpu")
    assert "hf_not_a_real_token" not in str(info.value)


def _fake_cache(root, model_id, files):
    folder = root / f"models--{model_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0" * 40)
    snapshot = folder / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for name in files:
        (snapshot / name).write_text("{}")


def test_the_status_for_doctor_says_token_and_cache_without_the_network(monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(sam3_module, "host_reachable", lambda host: pytest.fail("the network was asked"))
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    status = sam3_status()
    assert status["token"] and status["token_source"] == "HF_TOKEN" and not status["cached"]
    assert status["licence_url"] == LICENCE and status["gated"]
    assert "hf_secret_value" not in repr(status)
    _fake_cache(tmp_path, "facebook/sam3", ["config.json"])
    assert sam3_status()["config_cached"] and not sam3_status()["cached"]  # no weights yet
    _fake_cache(tmp_path / "b", "facebook/sam3", ["config.json", "model.safetensors"])
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "b"))
    assert sam3_status()["cached"]
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    assert not sam3_status()["token"] and sam3_status()["token_source"] is None


def test_a_model_id_that_is_neither_a_hub_id_nor_a_folder_is_a_bad_input(monkeypatch):
    monkeypatch.setattr(sam3_module, "host_reachable", lambda host: pytest.fail("the network was asked"))
    for model_id in ("not a/valid id!!", "/no/such/folder"):
        with pytest.raises(BadInputError, match="neither a hub id"):
            load_sam3(model_id, profile="full", device="cpu")
