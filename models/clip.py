"""The CLIP wrapper: parse a `--clip` spec, load the model through open_clip, encode images and text.

Every embedding leaves here L2-normalised as float32 numpy, so that the rest of vidrec never touches
open_clip directly and cosine similarity is a dot product everywhere.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlparse

import numpy as np
import open_clip
import torch
from safetensors.torch import load_file, save_file

TINY = "vidrec-tiny"
DEFAULT_SPEC = "ViT-B-32:laion2b_s34b_b79k"
CONFIG_DIR = Path(__file__).parent / "configs"
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
ALTERNATIVES = (
    "use a local checkpoint (--clip NAME:/path/to/weights.safetensors), "
    "an hf-hub:ORG/REPO already in the Hugging Face cache, or --clip tiny (trained on the catalog by tune-clip)"
)

open_clip.add_model_config(CONFIG_DIR)

# What open_clip.create_model_and_transforms builds (open_clip ships no type information).
OpenClipModel: TypeAlias = open_clip.CLIP | open_clip.CustomTextCLIP | open_clip.CoCa


class ClipError(Exception):
    """A CLIP that cannot be had, or a spec that cannot be read; the message is one line for the user."""


@dataclass(frozen=True)
class ClipSpec:
    """What `--clip` names: an open_clip model plus where its weights come from."""

    kind: str  # "pretrained" | "checkpoint" | "hf-hub" | "tiny"
    model: str  # open_clip model name, or "hf-hub:ORG/REPO"
    source: str | None = None  # pretrained tag or checkpoint path

    def __str__(self) -> str:
        if self.kind in ("tiny", "hf-hub"):
            return "tiny" if self.kind == "tiny" else self.model
        return f"{self.model}:{self.source}"


def parse_clip_spec(text: str) -> ClipSpec:
    """Read `NAME:TAG`, `NAME:PATH`, `hf-hub:ORG/REPO` or `tiny`."""
    text = (text or "").strip()
    if text == "tiny":
        return ClipSpec("tiny", TINY)
    if text.startswith("hf-hub:"):
        repo = text[len("hf-hub:") :]
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
            raise ClipError(f"bad CLIP spec {text!r}: expected hf-hub:ORG/REPO")
        return ClipSpec("hf-hub", text)
    name, sep, source = text.partition(":")
    if not sep or not name or not source:
        raise ClipError(f"bad CLIP spec {text!r}: expected NAME:TAG, NAME:PATH, hf-hub:ORG/REPO or tiny")
    if name not in open_clip.list_models():
        raise ClipError(f"unknown CLIP model {name!r} in {text!r} (see open_clip.list_models())")
    looks_like_path = "/" in source or os.sep in source or source.endswith(CHECKPOINT_SUFFIXES)
    if looks_like_path:
        return ClipSpec("checkpoint", name, str(Path(source).expanduser()))
    tags = open_clip.list_pretrained_tags_by_model(name)
    if source not in tags:
        raise ClipError(f"unknown pretrained tag {source!r} for {name}; known: {', '.join(tags) or 'none'}")
    return ClipSpec("pretrained", name, source)


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class ClipModel:
    """An open_clip model with its preprocessing and tokenizer, in eval mode on one device."""

    def __init__(self, spec: ClipSpec, model: OpenClipModel, preprocess, tokenizer, device: torch.device):
        self.spec = spec
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.context_length = int(getattr(tokenizer, "context_length", None) or model.context_length)
        with torch.no_grad():
            self.embed_dim = int(model.encode_text(tokenizer(["x"]).to(device)).shape[1])
        size = getattr(model.visual, "image_size", 224)
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)

    # ---- images -------------------------------------------------------------------------------
    def _autocast(self) -> torch.autocast:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> np.ndarray:
        """Preprocessed images [B, 3, S, S] -> normalised embeddings [B, D]."""
        if pixels.ndim != 4:
            raise ValueError(f"expected a batch of images [B, 3, S, S], got shape {tuple(pixels.shape)}")
        if len(pixels) == 0:
            return np.zeros((0, self.embed_dim), np.float32)
        with self._autocast():
            out = self.model.encode_image(pixels.to(self.device, non_blocking=True))
        return normalise(out.float().cpu().numpy())

    # ---- text ---------------------------------------------------------------------------------
    def _token_count(self, text: str) -> int:
        tok = self.tokenizer
        if hasattr(tok, "encode") and hasattr(tok, "sot_token_id"):
            return len(tok.encode(text))
        if hasattr(tok, "tokenizer"):  # open_clip's HFTokenizer
            return len(tok.tokenizer.encode(text, add_special_tokens=False))
        return len(text.split())

    def chunks(self, text: str) -> list[str]:
        """Split text into pieces that each fit the text tower, so nothing is cut off silently."""
        budget = self.context_length - 2
        text = text.strip()
        if not text:
            return []
        if self._token_count(text) <= budget:
            return [text]
        pieces: list[str] = []
        for word in re.findall(r"\S+\s*", text):
            pieces.extend(list(word) if self._token_count(word) > budget else [word])
        chunks, current = [], ""
        for piece in pieces:
            if current and self._token_count(current + piece) > budget:
                chunks.append(current)
                current = ""
            current += piece
        if current:
            chunks.append(current)
        return [c.strip() for c in chunks if c.strip()]

    @torch.no_grad()
    def encode_texts(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """Texts -> normalised embeddings [N, D]; long texts are chunked and pooled, empty ones give zeros."""
        owners, pieces, weights = [], [], []
        for i, text in enumerate(texts):
            for piece in self.chunks(text or ""):
                owners.append(i)
                pieces.append(piece)
                weights.append(max(1, self._token_count(piece)))
        order = sorted(range(len(pieces)), key=lambda j: weights[j])  # similar lengths share a batch
        out = np.zeros((len(texts), self.embed_dim), np.float32)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            tokens = self.tokenizer([pieces[j] for j in batch]).to(self.device)
            with self._autocast():
                emb = self.encode_tokens(tokens).float().cpu().numpy()
            np.add.at(
                out,
                [owners[j] for j in batch],
                normalise(emb) * np.asarray([weights[j] for j in batch], np.float32)[:, None],
            )
        return normalise(out)

    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """open_clip's CLIP.encode_text (unnormalised, with gradients when training) on tokens trimmed to the
        batch's longest: the causal mask makes the padding irrelevant, and short titles then cost a fraction
        of the full context."""
        m = self.model
        if not (isinstance(m, open_clip.CLIP) and m.text_pool_type in ("argmax", "eos") and m.attn_mask is not None):
            return m.encode_text(tokens)
        if m.text_pool_type == "argmax":
            end = tokens.argmax(dim=-1)  # the EOT token has the largest id
        else:
            end = (tokens == m.text_eos_id).int().argmax(dim=-1)
        length = int(end.max()) + 1
        tokens = tokens[:, :length]
        cast_dtype = m.transformer.get_cast_dtype()
        x = m.token_embedding(tokens).to(cast_dtype) + m.positional_embedding[:length].to(cast_dtype)
        x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask[:length, :length]))
        x = x[torch.arange(x.shape[0], device=x.device), end]  # the EOT token's features
        if m.text_projection is None:
            return x
        return m.text_projection(x) if isinstance(m.text_projection, torch.nn.Linear) else x @ m.text_projection

    # ---- weights ------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write the weights as safetensors (to a temporary name, then renamed; a failed write, a full disk
        say, leaves neither a half-written file nor the temporary one)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        state = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
        try:
            save_file(state, str(tmp))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def load_clip(
    spec: ClipSpec | str, *, weights: Path | None = None, device: str | None = None, seed: int = 0
) -> ClipModel:
    """Build the model a spec names. `weights` (a safetensors file) replaces the spec's own weights:
    that is how a catalog's tuned or tiny CLIP is reloaded without fetching anything."""
    if isinstance(spec, str):
        spec = parse_clip_spec(spec)
    dev = pick_device(device)
    try:
        if weights is not None or spec.kind == "tiny":
            torch.manual_seed(seed)  # a fresh tiny CLIP is the same on every machine
            model, _, preprocess = open_clip.create_model_and_transforms(spec.model, load_weights=False)
            if weights is not None:
                _load_state(model, Path(weights))
        elif spec.kind == "checkpoint":
            if spec.source is None or not Path(spec.source).is_file():
                raise ClipError(f"CLIP checkpoint not found: {spec.source}")
            model, _, preprocess = open_clip.create_model_and_transforms(spec.model, pretrained=None)
            _load_state(model, Path(spec.source))
        else:
            with _offline_unless_hub_reachable() as online:
                try:
                    model, _, preprocess = open_clip.create_model_and_transforms(
                        spec.model, pretrained=spec.source if spec.kind == "pretrained" else None
                    )
                except Exception as exc:
                    where = "" if online else " (no network and not in the local cache)"
                    raise ClipError(
                        f"cannot fetch CLIP weights for {spec}{where}: {_one_line(exc)}; {ALTERNATIVES}"
                    ) from exc
    except ClipError:
        raise
    except Exception as exc:
        raise ClipError(f"cannot load CLIP {spec}: {_one_line(exc)}") from exc
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        damaged = weights or spec.source or spec.model
        raise ClipError(f"the weights of CLIP {spec} hold non-finite numbers (a damaged file?): {damaged}")
    tokenizer = open_clip.get_tokenizer(spec.model)
    if spec.model == TINY:
        tokenizer = CjkCharTokenizer(tokenizer)
    return ClipModel(spec, model.to(dev), preprocess, tokenizer, dev)


class CjkCharTokenizer:
    """CLIP's tokenizer, except that each CJK ideograph is a token of its own, numbered after CLIP's BPE
    vocabulary (the tiny configuration's vocabulary is that much larger). CLIP's byte-level BPE splits
    most Chinese characters into three shared byte tokens, which a small text tower trained on one
    catalog cannot untangle; one token per character, as multilingual BERT does, it learns at once."""

    FIRST, LAST = 0x4E00, 0x9FFF  # CJK Unified Ideographs
    SPLIT = re.compile("([\u4e00-\u9fff])")

    def __init__(self, inner):
        self.inner = inner
        self.context_length = inner.context_length
        self.sot_token_id, self.eot_token_id = inner.sot_token_id, inner.eot_token_id
        self.base = len(inner.encoder)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in self.SPLIT.split(text):
            if len(piece) == 1 and self.FIRST <= ord(piece) <= self.LAST:
                ids.append(self.base + ord(piece) - self.FIRST)
            elif piece.strip():
                ids.extend(self.inner.encode(piece))
        return ids

    def __call__(self, texts: str | list[str], context_length: int | None = None) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else texts
        length = context_length or self.context_length
        tokens = torch.zeros(len(texts), length, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [self.sot_token_id, *self.encode(text)[: length - 2], self.eot_token_id]
            tokens[row, : len(ids)] = torch.tensor(ids)
        return tokens


def _load_state(model: torch.nn.Module, path: Path) -> None:
    """Load a checkpoint safely (safetensors, or torch.load with weights_only) and strictly."""
    try:
        state: dict[str, Any]
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
                state = state["state_dict"]
        state = {k.removeprefix("module."): v for k, v in state.items()}
        model.load_state_dict(state, strict=True)
    except Exception as exc:
        raise ClipError(f"CLIP weights {path} do not fit this model: {_one_line(exc)}") from exc


def _one_line(exc: Exception, limit: int = 240) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


@lru_cache(maxsize=1)
def _hub_reachable() -> bool:
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _offline_unless_hub_reachable() -> Iterator[bool]:
    """Without network, read the Hugging Face cache only: fail in a second instead of a minute of retries."""
    import huggingface_hub.constants as hub

    saved = hub.HF_HUB_OFFLINE
    online = not saved and _hub_reachable()
    hub.HF_HUB_OFFLINE = saved or not online
    try:
        yield online
    finally:
        hub.HF_HUB_OFFLINE = saved
