"""``rs-seg doctor``'s weights list: the SimFeatUp upsampler's checkpoint beside SAM's."""
from __future__ import annotations

from rs_helpers.models.checkpoints import SIMFEATUP_CHECKPOINT, Checkpoint, check_file, git_blob_sha1
from rs_helpers.models.doctor import format_checks, sam3_check, simfeatup_check, weight_checks, weights_check


def test_simfeatup_is_listed_beside_sam_missing_from_an_empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RS_HELPERS_CACHE", str(tmp_path))
    checks = weight_checks()
    names = [c.name for c in checks]
    assert names.index("SimFeatUp (SegEarth-OV)") == names.index("SAM vit_h") + 1
    simfeatup = checks[names.index("SimFeatUp (SegEarth-OV)")]
    assert simfeatup.ok and simfeatup.value == f"missing (from {SIMFEATUP_CHECKPOINT.url})"
    assert "xclip_jbu_one_million_aid.ckpt" in format_checks(checks)


def test_simfeatup_present_checked_at_first_use_then_verified(tmp_path):
    path = tmp_path / SIMFEATUP_CHECKPOINT.filename
    path.write_bytes(b"\0" * 2**20)
    check = simfeatup_check(tmp_path)
    assert check.ok and check.value == "present, git blob id checked at first use (1 MiB)"
    # a checkpoint whose published id is this file's: verified once checked
    ours = Checkpoint(SIMFEATUP_CHECKPOINT.url, "", git_sha1=git_blob_sha1(path))
    assert check_file(path, ours) is None
    assert weights_check("SimFeatUp (SegEarth-OV)", ours, path).value.startswith("present, verified")


def test_sam3_line_says_token_and_cache_without_the_network(monkeypatch, tmp_path):
    import rs_helpers.models.sam3 as sam3

    monkeypatch.setenv("RS_HELPERS_CACHE", str(tmp_path))
    status = {"model_id": "facebook/sam3", "token": False, "token_source": None, "cached": False, "gated": True,
              "licence_url": "https://huggingface.co/facebook/sam3"}
    monkeypatch.setattr(sam3, "sam3_status", lambda model_id="facebook/sam3": dict(status))
    checks = weight_checks()
    line = next(c for c in checks if c.name == "SAM 3")
    assert line.ok and "no Hugging Face token" in line.value and "not cached" in line.value
    assert "accept its licence on https://huggingface.co/facebook/sam3" in line.value
    status.update(token=True, token_source="HF_TOKEN", cached=True)
    line = sam3_check()
    assert line.value == "facebook/sam3: token present (HF_TOKEN), weights cached"


def test_sam3_line_reports_a_failing_check_instead_of_raising(monkeypatch):
    import rs_helpers.models.sam3 as sam3

    monkeypatch.setattr(sam3, "sam3_status", lambda model_id="facebook/sam3": 1 / 0)
    line = sam3_check()
    assert not line.ok and "ZeroDivisionError" in line.value
