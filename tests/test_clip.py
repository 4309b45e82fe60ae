"""The CLIP wrapper: specs, safe loading of local weights, and text that is never cut off."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.clip import ClipError, load_clip, parse_clip_spec

pytestmark = pytest.mark.unit  # the tiny CLIP and weights saved in the test's folder: no store, no world


@pytest.fixture(scope="module")
def tiny():
    return load_clip("tiny")


@pytest.mark.parametrize(
    "text, kind, model, source",
    [
        ("tiny", "tiny", "vidrec-tiny", None),
        ("ViT-B-32:laion2b_s34b_b79k", "pretrained", "ViT-B-32", "laion2b_s34b_b79k"),
        ("ViT-B-32:/models/b32.safetensors", "checkpoint", "ViT-B-32", "/models/b32.safetensors"),
        ("ViT-B-32:weights.pt", "checkpoint", "ViT-B-32", "weights.pt"),
        (
            "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
            "hf-hub",
            "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
            None,
        ),
    ],
)
def test_specs_parse(text, kind, model, source):
    spec = parse_clip_spec(text)
    assert (spec.kind, spec.model, spec.source) == (kind, model, source)
    assert parse_clip_spec(str(spec)) == spec


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "expected NAME:TAG"),
        ("ViT-B-32", "expected NAME:TAG"),
        ("NoSuchNet:tag", "unknown CLIP model"),
        ("ViT-B-32:no_such_tag", "unknown pretrained tag"),
        ("hf-hub:noslash", "hf-hub:ORG/REPO"),
    ],
)
def test_bad_specs_say_why(text, message):
    with pytest.raises(ClipError, match=message):
        parse_clip_spec(text)


def test_local_checkpoints_load_to_identical_embeddings(tiny, tmp_path):
    pixels = torch.rand(3, 3, tiny.image_size, tiny.image_size)
    texts = ["a cooking video", "厨房烹饪视频"]
    tiny.save(tmp_path / "tiny.safetensors")
    torch.save(tiny.model.state_dict(), tmp_path / "tiny.pt")
    for path in (tmp_path / "tiny.safetensors", tmp_path / "tiny.pt"):
        loaded = load_clip(f"vidrec-tiny:{path}", seed=123)  # another seed: only the file's weights can match
        np.testing.assert_array_equal(loaded.encode_images(pixels), tiny.encode_images(pixels))
        np.testing.assert_array_equal(loaded.encode_texts(texts), tiny.encode_texts(texts))


def test_weights_of_another_model_are_refused(tiny, tmp_path):
    tiny.save(tmp_path / "tiny.safetensors")
    with pytest.raises(ClipError, match="do not fit"):
        load_clip(f"ViT-B-32:{tmp_path / 'tiny.safetensors'}")
    (tmp_path / "junk.safetensors").write_bytes(b"not weights")
    with pytest.raises(ClipError, match="do not fit"):
        load_clip(f"vidrec-tiny:{tmp_path / 'junk.safetensors'}")
    with pytest.raises(ClipError, match="not found"):
        load_clip(f"vidrec-tiny:{tmp_path / 'absent.safetensors'}")


def test_pretrained_weights_without_network_fail_clearly(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # never download in tests
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ClipError) as failure:
        load_clip("ViT-B-32:laion2b_s34b_b79k")
    message = str(failure.value)
    assert "cannot fetch CLIP weights" in message and "--clip tiny" in message and "\n" not in message


def test_long_text_is_encoded_whole_not_cut(tiny):
    head = "travel " * 40  # longer than the tiny tower's context by itself
    a, b = tiny.encode_texts([head + "cooking pasta in a kitchen", head + "football match in a stadium"])
    assert not np.allclose(a, b)  # a truncating encoder would see only the shared head
    pieces = tiny.chunks(head + "cooking pasta")
    assert len(pieces) > 1 and " ".join(pieces).split() == (head + "cooking pasta").split()
    chinese = "厨房烹饪视频" * 12
    assert "".join(tiny.chunks(chinese)) == chinese


def test_empty_text_embeds_to_zeros(tiny):
    emb = tiny.encode_texts(["", "   ", "news"])
    assert np.all(emb[:2] == 0) and np.isclose(np.linalg.norm(emb[2]), 1, atol=1e-5)


def test_trimmed_text_encoding_matches_open_clip(tiny):
    tokens = tiny.tokenizer(["a cooking video", "厨房烹饪视频 with a much longer description of the dish"])
    with torch.no_grad():
        full = tiny.model.encode_text(tokens)
        trimmed = tiny.encode_tokens(tokens)
    np.testing.assert_allclose(trimmed.numpy(), full.numpy(), atol=1e-5)
