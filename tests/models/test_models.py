"""Model loading: tiny models through the real loaders, checkpoints the test wrote itself,
and the offline path (exit 3, one message)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rs_helpers.models import clip as clip_models, qwen as qwen_models, sam as sam_models
from rs_helpers.errors import BadInputError, WeightsUnavailableError


def test_tiny_sam_is_deterministic_and_announced(capsys):
    a = sam_models.load_sam("vit_l", profile="tiny", device="cpu")
    b = sam_models.load_sam("vit_b", profile="tiny", device="cpu")
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)
    assert a.image_encoder.img_size == 256


def test_tiny_banner_goes_to_stderr():
    import io

    from rs_helpers.profile import _announced, announce_tiny

    _announced.discard("unit-test")
    stream = io.StringIO()
    announce_tiny("unit-test", stream=stream)
    announce_tiny("unit-test", stream=stream)  # once per kind of model
    assert stream.getvalue().count("MEANINGLESS") == 1


def test_sam_checkpoint_written_by_test_loads_through_user_loader(tmp_path):
    sam = sam_models.build_sam_architecture("tiny")
    with torch.no_grad():
        sam.mask_decoder.iou_token.weight.fill_(0.25)
    path = tmp_path / "tiny_sam.pth"
    torch.save(sam.state_dict(), path)
    loaded = sam_models.load_sam("tiny", checkpoint=path, device="cpu")
    assert torch.all(loaded.mask_decoder.iou_token.weight == 0.25)


def test_sam_checkpoint_of_wrong_architecture_is_unusable_weights(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save({"not": torch.zeros(1)}, path)
    with pytest.raises(WeightsUnavailableError, match="does not hold SAM"):
        sam_models.load_sam("tiny", checkpoint=path, device="cpu")
    with pytest.raises(BadInputError, match="does not exist"):
        sam_models.load_sam("tiny", checkpoint=tmp_path / "missing.pth", device="cpu")


def test_unknown_sam_variant():
    with pytest.raises(BadInputError, match="unknown SAM variant"):
        sam_models.build_sam_architecture("vit_x")


def test_full_profile_sam_offline_is_weights_unavailable(monkeypatch, tmp_path):
    from rs_helpers.models import checkpoints as weights

    monkeypatch.setitem(weights.SAM_CHECKPOINTS, "vit_b",
                        weights.Checkpoint("http://127.0.0.1:9/sam_vit_b_01ec64.pth", "01ec64"))
    monkeypatch.setattr(sam_models, "SAM_CHECKPOINTS", weights.SAM_CHECKPOINTS)
    with pytest.raises(WeightsUnavailableError, match="sam_vit_b_01ec64.pth"):
        sam_models.load_sam("vit_b", profile="full", device="cpu")


def test_full_sam_loads_cached_checkpoint_without_network(monkeypatch, tmp_path):
    """A checkpoint already in the cache (right md5 prefix) is used as is."""
    import hashlib

    from rs_helpers.models import checkpoints as weights

    sam = sam_models.build_sam_architecture("tiny")
    path = tmp_path / "ckpt.pth"
    torch.save(sam.state_dict(), path)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()[:6]
    ckpt = weights.Checkpoint(f"http://127.0.0.1:9/sam_tiny_{md5}.pth", md5)
    path.rename(tmp_path / ckpt.filename)
    monkeypatch.setenv("RS_HELPERS_CACHE", str(tmp_path))
    monkeypatch.setitem(sam_models.SAM_CHECKPOINTS, "tiny-cached", ckpt)
    assert weights.fetch(ckpt, progress=False) == tmp_path / ckpt.filename


def test_tiny_clip_encodes_text_and_images():
    clip = clip_models.load_clip(profile="tiny", device="cpu")
    assert clip.name == clip_models.TINY_CLIP_NAME and clip.patch_size == 16 and clip.image_size == 224
    with torch.no_grad():
        text = clip.model.encode_text(clip.tokenizer(["a building", "a road"]))
        image = clip.model.encode_image(torch.zeros(1, 3, 224, 224))
    assert text.shape == (2, 32) and image.shape == (1, 32)


def test_clip_file_written_by_test_loads_through_open_clip_factory(tmp_path):
    clip = clip_models.load_clip(profile="tiny", device="cpu")
    with torch.no_grad():
        clip.model.logit_scale.fill_(3.0)
    path = tmp_path / "tiny_clip.pt"
    torch.save(clip.model.state_dict(), path)
    loaded = clip_models.load_clip(clip_models.TINY_CLIP_NAME, pretrained=str(path), profile="full", device="cpu")
    assert float(loaded.model.logit_scale) == pytest.approx(3.0)
    assert loaded.pretrained == str(path)


@pytest.mark.parametrize("quick", [True, False])
def test_clip_activation_follows_the_pretrained_tag(monkeypatch, tmp_path, quick):
    """OpenAI tags were trained with QuickGELU: open_clip 3 would build plain GELU and only warn."""
    import warnings

    import open_clip
    from open_clip.transformer import QuickGELU

    tiny = clip_models.load_clip(profile="tiny", device="cpu")
    path = tmp_path / "weights.pt"
    torch.save(tiny.model.state_dict(), path)
    # the tiny architecture under another name, with a downloadable tag (the download is mocked)
    name = "rs-test-clip"
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, name, open_clip.get_model_config(clip_models.TINY_CLIP_NAME))
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, name, {"fake": {"hf_hub": "org/fake/", "quick_gelu": quick}})
    monkeypatch.setattr(open_clip.factory, "download_pretrained", lambda cfg, cache_dir=None: str(path))
    monkeypatch.setattr(clip_models, "host_reachable", lambda *a, **k: True)
    assert clip_models.clip_quick_gelu(name, "fake") is quick
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="QuickGELU mismatch")
        clip = clip_models.load_clip(name, pretrained="fake", profile="full", device="cpu")
    activations = {type(m) for m in clip.model.modules() if isinstance(m, (QuickGELU, torch.nn.GELU))}
    assert activations == ({QuickGELU} if quick else {torch.nn.GELU})
    assert clip_models.clip_quick_gelu("ViT-B-16", "openai") is True  # the default model and tag
    assert clip_models.clip_quick_gelu("ViT-B-16", "laion2b_s34b_b88k") is False
    assert clip_models.clip_quick_gelu("ViT-B-16", None) is False


def test_full_clip_offline_is_weights_unavailable(monkeypatch):
    monkeypatch.setattr(clip_models, "host_reachable", lambda *a, **k: False)
    with pytest.raises(WeightsUnavailableError) as info:
        clip_models.load_clip("ViT-B-16", "openai", profile="full", device="cpu")
    assert "timm/vit_base_patch16_clip_224.openai" in str(info.value) and "--profile tiny" in str(info.value)


def test_full_qwen_offline_is_weights_unavailable(monkeypatch):
    monkeypatch.setattr(qwen_models, "host_reachable", lambda *a, **k: False)
    with pytest.raises(WeightsUnavailableError, match="Qwen/Qwen3-VL-2B-Instruct"):
        qwen_models.load_qwen(profile="full", device="cpu")


def test_qwen_folder_without_config_is_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="no config.json"):
        qwen_models.load_qwen(str(tmp_path), profile="full", device="cpu")


def test_device_and_dtype_choice():
    from rs_helpers.device import pick_device, pick_dtype

    assert pick_device("cpu").type == "cpu"
    assert pick_dtype("cpu") == torch.float32
    if not torch.cuda.is_available():
        assert pick_device().type in ("cpu", "mps")


def test_profile_from_env_and_bad_value(monkeypatch):
    from rs_helpers.profile import get_profile

    monkeypatch.setenv("RS_HELPERS_PROFILE", "full")
    assert get_profile() == "full" and get_profile("tiny") == "tiny"
    with pytest.raises(BadInputError):
        get_profile("huge")


def test_tiny_sam_predicts_masks(tiny_sam, rgb_image):
    from segment_anything import SamPredictor

    predictor = SamPredictor(tiny_sam)
    predictor.set_image(rgb_image)
    masks, scores, _ = predictor.predict(np.array([[10, 10]]), np.array([1]), multimask_output=True)
    assert masks.shape == (3, 96, 128) and scores.shape == (3,)
