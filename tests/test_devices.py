"""The same pipelines on every device and precision this machine has: CPU in fp32, bf16 and fp16
autocast here; CUDA (bf16/fp16 autocast, gradient checkpointing) where a GPU is present.

The CUDA cases are skipped without a GPU; `scripts/gpu/check.sh` runs this file on a GPU machine.
Tiny random models: what is tested is that the half-precision and accelerator paths compute the
same masks as the fp32 reference and that training and generation run there, not mask quality.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rs_helpers.device import pick_dtype
from rs_helpers.sam.fast_proposals import generate_fast, mask_match
from rs_helpers.models.sam import build_tiny_sam
from rs_helpers.models.clip import load_clip
from rs_helpers.models.qwen import load_qwen
from rs_helpers.sam.proposals import ProposalSettings, generate_reference

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
# Relaxed thresholds and no NMS: ~170 noisy masks, many of them near a threshold.
MANY = dict(pred_iou_thresh=0.0, stability_score_thresh=0.5, box_nms_thresh=1.0, crop_nms_thresh=1.0)
DEVICE_DTYPES = [
    ("cpu", torch.float32), ("cpu", torch.bfloat16), ("cpu", torch.float16),
    pytest.param("cuda", torch.float32, marks=CUDA), pytest.param("cuda", None, marks=CUDA),  # None: bf16/fp16
]
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: faster on one thread


@pytest.fixture(scope="module")
def image():
    """A shipped sample, small: 64 x 80."""
    from rs_helpers.samples import list_samples

    rgb = list_samples()[0].load_image().rgb
    return np.asarray(Image.fromarray(rgb).resize((80, 64), Image.BILINEAR))


@pytest.mark.parametrize("device, dtype", DEVICE_DTYPES)
def test_fast_proposals_match_fp32_reference(device, dtype, image):
    """The fast path under autocast gives the masks of segment-anything's generator in fp32."""
    reference_sam = build_tiny_sam().eval()
    sam = build_tiny_sam().eval().to(device)
    settings = ProposalSettings(points_per_side=8, **MANY)
    ref = generate_reference(reference_sam, image, settings)
    fast = generate_fast(sam, image, settings, dtype=dtype)
    assert len(ref) >= 100  # a real comparison
    a, b = mask_match(ref.masks, fast.masks, 0.95)
    assert a >= 0.95 and b >= 0.95, (device, dtype, a, b)
    assert abs(len(ref) - len(fast)) <= max(2, len(ref) // 50)


@pytest.mark.parametrize("device", DEVICES)
def test_ovss_runs_on_device(device, image):
    from rs_helpers.models.sam import load_sam
    from rs_helpers.ovss.pipeline import segment

    sam = load_sam(profile="tiny", device=device)
    clip = load_clip(profile="tiny", device=device)
    result = segment(image, "building;road;water", sam=sam, clip=clip)
    assert result.labels.shape == image.shape[:2] and result.labels.dtype == np.uint8
    assert set(np.unique(result.labels)) <= {0, 1, 2}
    assert sum(result.shares.values()) == pytest.approx(1.0)
    if device == "cuda":
        assert result.memory.get("peak_cuda_mib", 0) > 0


@pytest.mark.parametrize("device, dtype", [("cpu", torch.float32), ("cpu", torch.bfloat16),
                                           pytest.param("cuda", None, marks=CUDA)])
def test_qwen_answers_in_half_precision(device, dtype, image):
    from rs_helpers.refer.vlm_qwen import QwenBackend

    backend = QwenBackend(profile="tiny", device=device, dtype=dtype, max_new_tokens=12)
    expected = dtype or pick_dtype(device)
    assert next(backend.model.parameters()).dtype == expected
    first, second = backend.ask(image, "the red roof"), backend.ask(image, "the red roof")
    assert first.text == second.text  # greedy: deterministic
    assert first.usage["completion_tokens"] > 0


@pytest.mark.parametrize("device", DEVICES)
def test_lora_steps_with_gradient_checkpointing(device, tmp_path):
    """A few LoRA steps with gradient checkpointing (bf16/fp16 mixed precision on CUDA):
    finite losses, only adapter weights change, the adapter is saved."""
    from lora_examples import fast_settings, write_examples

    from rs_helpers.lora.train import train_lora

    train_file = write_examples(tmp_path / "data")
    settings = fast_settings(device=device, max_steps=4, logging_steps=1, lr=1e-3, gradient_checkpointing=True)
    qwen = load_qwen(profile="tiny", device=device,
                     dtype=None if device == "cuda" else torch.float32)
    frozen = {n: p.detach().clone() for n, p in qwen.model.named_parameters()}
    result = train_lora(train_file, tmp_path / "adapter", settings, qwen=qwen, progress=False)
    assert result.global_step == 4
    assert len(result.losses) == 4 and all(np.isfinite(result.losses))
    renamed = hasattr(qwen.model, "is_activation_checkpointing")  # transformers 5.x's name
    assert getattr(qwen.model, "is_activation_checkpointing" if renamed else "is_gradient_checkpointing")
    changed = {n for n, p in result.model.named_parameters() if "lora_B" in n and p.detach().abs().sum() > 0}
    assert changed  # LoRA B starts at zero: a non-zero B means the adapter learned
    base = {n.replace("base_model.model.", "").replace(".base_layer", ""): p
            for n, p in result.model.named_parameters() if "lora_" not in n}
    assert all(torch.equal(base[n], frozen[n]) for n in frozen if n in base)
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("capability, expected", [((7, 5), torch.float16), ((8, 0), torch.bfloat16),
                                                  ((9, 0), torch.bfloat16)])
def test_dtype_follows_native_bf16_not_emulation(monkeypatch, capability, expected):
    """A T4 (7.5, Colab's free GPU) only emulates bf16: torch says "supported", we pick fp16."""
    from rs_helpers.device import native_bf16

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what torch says on a T4
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    monkeypatch.setattr(torch.version, "hip", None)
    assert pick_dtype("cuda") == expected
    assert native_bf16("cuda") == (expected == torch.bfloat16)
    assert pick_dtype("cpu") == torch.float32 and not native_bf16("cpu")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_lora_weights_train_in_fp32_on_a_half_precision_base(dtype):
    """On a T4 the base loads in fp16 and the Trainer uses fp16 mixed precision, whose gradient
    scaler refuses fp16 trainable weights: the LoRA weights must be fp32 (peft's autocast)."""
    from peft import get_peft_model

    from rs_helpers.lora.train import LoraSettings, lora_config

    qwen = load_qwen(profile="tiny", device="cpu", dtype=dtype)
    model = get_peft_model(qwen.model, lora_config(LoraSettings(rank=4, alpha=8)))
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    assert all(p.dtype == dtype for n, p in model.named_parameters() if not p.requires_grad and p.is_floating_point())


def test_points_avoid_float64_on_mps():
    """Apple's mps has no float64: the fast path keeps grid points in float32 there only."""
    from rs_helpers.sam.fast_proposals import _point_dtype

    assert _point_dtype(torch.device("mps")) == torch.float32
    assert _point_dtype(torch.device("cpu")) == torch.float64 == _point_dtype("cuda")


def test_doctor_names_the_gpu_and_its_dtype(monkeypatch):
    from types import SimpleNamespace

    from rs_helpers.models.doctor import device_checks

    monkeypatch.delenv("RS_HELPERS_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda *a: SimpleNamespace(name="Tesla T4", total_memory=15 * 2**30, major=7, minor=5))
    monkeypatch.setattr(torch.version, "hip", None)
    checks = {c.name: c.value for c in device_checks()}
    assert checks["device"] == "cuda" and checks["dtype"] == "float16"
    assert checks["gpu"] == "Tesla T4, 15.0 GiB, compute capability 7.5"
