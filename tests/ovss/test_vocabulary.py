"""Class-string parsing, prompt templates and cached text embeddings."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rs_helpers.errors import BadInputError
from rs_helpers.ovss.vocabulary import TextCache, Vocabulary, encode_vocabulary, get_templates, parse_classes


def test_parse_classes_with_synonyms_and_spacing():
    vocab = parse_classes(" building , roof,house ;road;\nwater  body ;")
    assert vocab.names == ["building", "road", "water body"]
    assert vocab.synonyms[0] == ("building", "roof", "house")
    assert len(vocab) == 3
    assert vocab.index("ROOF") == 0 and vocab.index("water body") == 2


def test_parse_list_input_and_passthrough():
    vocab = parse_classes(["background", "building,roof"])
    assert vocab.names == ["background", "building"]
    assert parse_classes(vocab) is vocab
    assert parse_classes(vocab.to_string()) == vocab


@pytest.mark.parametrize("text", ["", "   ", ";;", " , ;\n", [], [" ", ","], None])
def test_empty_or_nothing_raises(text):
    with pytest.raises(BadInputError, match="class"):
        parse_classes(text)


@pytest.mark.parametrize("text", ["road;road", "Road;road", "road;street,road", "road,Road;water"])
def test_duplicates_raise(text):
    with pytest.raises(BadInputError, match="appears"):
        parse_classes(text)


@pytest.mark.parametrize("items", [[";"], ["road", "water;tree"], ["road\nwater"]])
def test_a_separator_inside_one_list_item_raises(items):
    with pytest.raises(BadInputError, match="one class per item"):
        parse_classes(items)
    assert parse_classes(["road", "water,river"]).synonyms == (("road",), ("water", "river"))


def test_unknown_class_index_raises():
    with pytest.raises(BadInputError, match="not one of the classes"):
        parse_classes("a;b").index("c")


def test_background_helpers():
    vocab = parse_classes("building;road")
    assert vocab.background_index() is None
    with_bg = vocab.with_background()
    assert with_bg.names == ["background", "building", "road"]
    assert with_bg.background_index() == 0
    assert with_bg.with_background() is with_bg
    assert parse_classes("road;clutter,background").background_index() == 1


@given(st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=6), min_size=1, max_size=6, unique=True))
@settings(max_examples=50, deadline=None)
def test_parse_round_trip(names):
    vocab = parse_classes(";".join(names))
    assert vocab.names == names
    assert parse_classes(vocab.to_string()) == vocab


def test_templates():
    assert len(get_templates("imagenet80")) == 80
    assert len(get_templates("short")) == 7
    for name in ("imagenet80", "short", "aerial", "single", "none"):
        assert all("{}" in t for t in get_templates(name))
    assert get_templates(["a {} from above"]) == ("a {} from above",)
    with pytest.raises(BadInputError):
        get_templates("nope")
    with pytest.raises(BadInputError):
        get_templates(["no placeholder"])


def test_text_embeddings_shape_norm_and_average(tiny_clip):
    cache = TextCache()
    text = encode_vocabulary(tiny_clip, "building,roof;road", templates="aerial", cache=cache)
    assert text.embeddings.shape[0] == 3 and text.n_classes == 2
    assert text.row_class.tolist() == [0, 0, 1]
    assert torch.allclose(text.embeddings.norm(dim=-1), torch.ones(3), atol=1e-5)
    # the row of "road" is the normalised mean of its normalised template embeddings
    with torch.no_grad():
        tokens = tiny_clip.tokenizer([t.format("road") for t in get_templates("aerial")])
        each = torch.nn.functional.normalize(tiny_clip.model.encode_text(tokens).float(), dim=-1)
    expected = torch.nn.functional.normalize(each.mean(0), dim=-1)
    assert torch.allclose(text.embeddings[2], expected, atol=1e-5)
    first_only = encode_vocabulary(tiny_clip, "building,roof;road", templates="aerial", synonyms=False, cache=cache)
    assert first_only.embeddings.shape[0] == 2


def test_text_cache_hits_per_vocabulary(tiny_clip):
    cache = TextCache()
    a = encode_vocabulary(tiny_clip, "building;road", templates="single", cache=cache)
    b = encode_vocabulary(tiny_clip, Vocabulary((("building",), ("road",))), templates="single", cache=cache)
    assert a is b and cache.hits == 1 and cache.misses == 1
    encode_vocabulary(tiny_clip, "building;water", templates="single", cache=cache)
    encode_vocabulary(tiny_clip, "building;road", templates="short", cache=cache)
    assert cache.misses == 3


def test_pool_is_max_over_synonyms(tiny_clip):
    text = encode_vocabulary(tiny_clip, "a,b,c;d", templates="single", cache=None)
    scores = torch.tensor([[0.1, 5.0], [0.7, 1.0], [0.3, 2.0], [0.2, 9.0]])  # rows x pixels
    pooled = text.pool(scores, dim=0)
    assert torch.allclose(pooled, torch.tensor([[0.7, 5.0], [0.2, 9.0]]))
    assert torch.allclose(text.pool(scores.T, dim=1), pooled.T)
