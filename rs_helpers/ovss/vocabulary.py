"""Class lists for open-vocabulary segmentation: parsing, prompt templates, text embeddings.

A class string is ``"building;road;water"``: classes separated by ``;`` (or new lines), synonyms
inside a class by ``,`` (``"building,roof,house;road"``). The first name of a class is its
display name. Each name becomes one text embedding: the CLIP embeddings of the name in every
prompt template, normalised, averaged and normalised again (as in CLIP's zero-shot recipe and
SegEarth-OV). Embeddings are cached per (model, names, templates), so changing a threshold or a
selector never re-encodes the text.
"""
from __future__ import annotations

import unicodedata
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import torch

from rs_helpers.errors import BadInputError

BACKGROUND_NAMES = ("background",)

# A short set of overhead-imagery prompts (our choice, unconfirmed by the paper).
AERIAL_TEMPLATES = (
    "a photo of a {}.",
    "an aerial photo of a {}.",
    "a satellite image of a {}.",
    "a remote sensing image of a {}.",
    "an aerial view of the {}.",
)


def _open_clip_templates(name: str) -> tuple[str, ...]:
    from open_clip import zero_shot_metadata as meta

    return tuple(t if isinstance(t, str) else t("{}") for t in getattr(meta, name))


def get_templates(templates: str | Sequence[str] = "imagenet80") -> tuple[str, ...]:
    """Prompt templates by name or as given (each must contain ``{}``).

    ``imagenet80``: the 80 ImageNet templates of CLIP (SegEarth-OV's choice, the default);
    ``short``: the 7 that OpenAI selected from them; ``aerial``: 5 overhead-imagery prompts;
    ``single``: ``"a photo of a {}."``; ``none``: the bare name.
    """
    if isinstance(templates, str):
        named = {
            "imagenet80": lambda: _open_clip_templates("OPENAI_IMAGENET_TEMPLATES"),
            "short": lambda: _open_clip_templates("SIMPLE_IMAGENET_TEMPLATES"),
            "aerial": lambda: AERIAL_TEMPLATES,
            "single": lambda: ("a photo of a {}.",),
            "none": lambda: ("{}",),
        }
        if templates not in named:
            raise BadInputError(f"unknown template set {templates!r}; choose one of {', '.join(named)}")
        return named[templates]()
    out = tuple(templates)
    if not out or any("{}" not in t for t in out):
        raise BadInputError("prompt templates must be a non-empty list of strings containing '{}'")
    return out


@dataclass(frozen=True)
class Vocabulary:
    """Classes, each a tuple of synonyms; ``names`` are the first synonyms."""

    synonyms: tuple[tuple[str, ...], ...]

    @property
    def names(self) -> list[str]:
        return [s[0] for s in self.synonyms]

    def __len__(self) -> int:
        return len(self.synonyms)

    def index(self, name: str) -> int:
        """Index of the class that has ``name`` (case-insensitive) among its synonyms."""
        key = name.strip().lower()
        for i, syn in enumerate(self.synonyms):
            if key in (s.lower() for s in syn):
                return i
        raise BadInputError(f"{name!r} is not one of the classes ({'; '.join(self.names)})")

    def background_index(self, background_names: Sequence[str] = BACKGROUND_NAMES) -> int | None:
        """Index of the background class (one whose synonyms include a background name)."""
        keys = {b.lower() for b in background_names}
        for i, syn in enumerate(self.synonyms):
            if keys & {s.lower() for s in syn}:
                return i
        return None

    def with_background(self, name: str = "background") -> "Vocabulary":
        """The vocabulary with a background class first, unless it already has one."""
        if self.background_index((name,)) is not None:
            return self
        return Vocabulary(((name,),) + self.synonyms)

    def to_string(self) -> str:
        return ";".join(",".join(s) for s in self.synonyms)


MAX_CLASSES = 254  # label maps are uint8 and 255 marks ignored pixels: classes 0..253 (+ a background)
MAX_NAME_CHARS = 300  # CLIP reads 77 tokens; a longer name is a pasted paragraph, not a class
_EMPTY = "the class list is empty: give classes like 'building;road;water'"


def _check_name(name: str) -> None:
    """A class name CLIP can read and every output can print: UTF-8, no control characters, short."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInputError(f"class name {name[:60]!r} holds bytes that are not UTF-8 text; retype it") from None
    bad = next((ch for ch in name if unicodedata.category(ch) == "Cc"), None)
    if bad is not None:
        raise BadInputError(f"class name {name[:60]!r} holds the control character U+{ord(bad):04X}; remove it")
    if len(name) > MAX_NAME_CHARS:
        raise BadInputError(f"class name {name[:40]!r}... is {len(name)} characters long; "
                            f"a class name has at most {MAX_NAME_CHARS}")


def parse_classes(classes: str | Sequence[str] | Vocabulary) -> Vocabulary:
    """Parse ``"building,roof;road;water"`` (or a list with one class per item) into a
    :class:`Vocabulary`. Raises :class:`BadInputError` for an empty list, a list that parses
    to nothing, a name used twice (in one class or across classes), more than
    :data:`MAX_CLASSES` classes (label 255 marks ignored pixels), and names that are not UTF-8,
    hold control characters or are longer than :data:`MAX_NAME_CHARS` characters. All of it is
    checked here, before any model work."""
    if isinstance(classes, Vocabulary):
        return classes
    if classes is None:
        raise BadInputError(_EMPTY)
    if isinstance(classes, (bytes, bytearray)):
        try:
            classes = bytes(classes).decode("utf-8")
        except UnicodeDecodeError:
            raise BadInputError("the class list holds bytes that are not UTF-8 text") from None
    if isinstance(classes, str):
        if not classes.strip():
            raise BadInputError(_EMPTY)
        items = classes.replace("\r", "\n").replace("\n", ";").split(";")
    else:
        try:
            items = list(classes)
        except TypeError:
            raise BadInputError(f"classes must be a string or a list of strings, "
                                f"not {type(classes).__name__}") from None
        if not items:
            raise BadInputError(_EMPTY)
        if not all(isinstance(c, str) for c in items):
            wrong = next(c for c in items if not isinstance(c, str))
            raise BadInputError(f"each class must be a string, got {type(wrong).__name__} {str(wrong)[:40]!r}")
        if any(";" in c or "\n" in c or "\r" in c for c in items):  # a separator inside one class
            wrong = next(c for c in items if ";" in c or "\n" in c or "\r" in c)
            raise BadInputError(f"the list item {wrong[:40]!r} holds ';' or a line break: give one class per item "
                                "(synonyms separated by ','), or the whole list as one string")
    parsed: list[tuple[str, ...]] = []
    seen: dict[str, int] = {}
    for item in items:
        names = tuple(" ".join(n.split()) for n in item.split(",") if n.strip())
        if not names:
            continue
        for name in names:
            _check_name(name)
            key = name.lower()
            if key in seen:
                where = "twice in one class" if seen[key] == len(parsed) else "in two classes"
                raise BadInputError(f"class name {name!r} appears {where}; each name must be unique")
            seen[key] = len(parsed)
        parsed.append(names)
        if len(parsed) > MAX_CLASSES:
            raise BadInputError(f"at most {MAX_CLASSES} classes: label 255 marks ignored pixels "
                                f"(this list has more than {MAX_CLASSES})")
    if not parsed:
        shown = classes if isinstance(classes, str) else ";".join(items)
        raise BadInputError(f"the class list {shown[:80]!r} has no class names; use e.g. 'building;road;water'")
    return Vocabulary(tuple(parsed))


@dataclass
class TextEmbeddings:
    """One normalised embedding per (class, synonym) row; ``row_class`` maps rows to classes."""

    embeddings: torch.Tensor  # R x D, L2-normalised
    row_class: torch.Tensor  # R long
    n_classes: int
    templates: tuple[str, ...]

    def pool(self, row_scores: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Max over each class's synonym rows along ``dim`` (R -> n_classes)."""
        moved = row_scores.movedim(dim, 0)
        out = moved.new_full((self.n_classes,) + tuple(moved.shape[1:]), float("-inf"))
        index = self.row_class.to(moved.device).view(-1, *([1] * (moved.dim() - 1))).expand_as(moved)
        out = out.scatter_reduce(0, index, moved, reduce="amax", include_self=True)
        return out.movedim(0, dim)


class TextCache:
    """Text embeddings per model (held weakly) and per (rows, templates), least recent dropped."""

    def __init__(self, max_items: int = 32):
        self.max_items = max_items
        self._store: "weakref.WeakKeyDictionary[torch.nn.Module, OrderedDict]" = weakref.WeakKeyDictionary()
        self.hits = 0
        self.misses = 0

    def get(self, model: torch.nn.Module, key: tuple):
        entries = self._store.get(model)
        if entries is not None and key in entries:
            entries.move_to_end(key)
            self.hits += 1
            return entries[key]
        self.misses += 1
        return None

    def put(self, model: torch.nn.Module, key: tuple, value) -> None:
        entries = self._store.setdefault(model, OrderedDict())
        entries[key] = value
        while len(entries) > self.max_items:
            entries.popitem(last=False)


DEFAULT_TEXT_CACHE = TextCache()


@torch.no_grad()
def encode_vocabulary(clip, vocabulary: str | Sequence[str] | Vocabulary,
                      templates: str | Sequence[str] = "imagenet80", synonyms: bool = True,
                      cache: TextCache | None = DEFAULT_TEXT_CACHE, batch_size: int = 256) -> TextEmbeddings:
    """Embed every class name (all synonyms, or only the first when ``synonyms=False``),
    averaged over ``templates``. ``clip`` is a :class:`rs_helpers.models.clip.ClipModel`."""
    vocab = parse_classes(vocabulary)
    temps = get_templates(templates)
    rows = [(ci, name) for ci, syn in enumerate(vocab.synonyms) for name in (syn if synonyms else syn[:1])]
    key = (tuple(rows), temps)
    if cache is not None:
        hit = cache.get(clip.model, key)
        if hit is not None:
            return hit
    device = clip.device
    texts = [t.format(name) for _, name in rows for t in temps]
    chunks = []
    for start in range(0, len(texts), batch_size):
        tokens = clip.tokenizer(texts[start:start + batch_size]).to(device)
        chunks.append(torch.nn.functional.normalize(clip.model.encode_text(tokens).float(), dim=-1))
    per_text = torch.cat(chunks).view(len(rows), len(temps), -1)
    embeddings = torch.nn.functional.normalize(per_text.mean(1), dim=-1)
    result = TextEmbeddings(embeddings, torch.tensor([ci for ci, _ in rows], device=device), len(vocab), temps)
    if cache is not None:
        cache.put(clip.model, key, result)
    return result
