"""The multi-task network: one model that learns click, like, watch fraction, a video's category and the
context of an engagement, plus a two-tower retrieval head, over shared feature encoders.

Data flow for a batch of B impressions (d = group width, G = feature groups, H = expert width):

    feature groups       history   attention pool of the user's earlier clicks, keyed by the candidate [B, d]
                         user_id   hashed user id embedding                                            [B, d]
                         video_clip, text_clip   projections of the video's CLIP embeddings            [B, d]
                         video_id  hashed video id embedding (what content cannot say: quality)        [B, d]
                         meta      projection of numeric metadata (duration)                           [B, d]
                         context   hour + weekday + device + region embeddings, summed                 [B, d]
    gates                sigmoid(gate_logit[g]) * group g   (learnable, L1-penalised: feature selection)
    interaction          concat(groups) ++ pairwise dot products of groups        [B, G*d + G(G-1)/2]
    crosses (optional)   cross_layers DCN-v2 layers x_{l+1} = x_0 * (W x_l + b) + x_l, stacked: same width
    bottom               shared-bottom: one MLP; mmoe: experts + a softmax gate per task;
                         ple: CGC levels of shared and task-specific experts, gated per task   -> [B, H] per task
    towers               one small MLP per task -> logits
    offsets              + a learnt per-user and per-video bias on the click, like and watch logits, each with a
                         prior at 0 (and the id embeddings with a prior at the unknown id's), so that they shrink
                         toward what content and context predict: a video's quality is learnt from its own
                         impressions, as far as their number warrants; a new video has none (`biases`, on)
                         + optionally, per context field, a learnt vector dotted with the content (`context_terms`)

A task sees only the groups its question allows: category looks at the video's content alone (so it
predicts unlabelled videos), the context head at everything but the sample's own context. Both pass
through the same experts as the interest tasks, which is what makes them multi-task rather than side
models. `single-task` is not a class here: it is one network per task (see `ingest/learning/training.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .context import HOUR_SLOTS, HOURS, WEEKDAYS
from .data import CatalogTensors, video_batch

GROUPS = ("history", "user_id", "video_clip", "text_clip", "video_id", "meta", "context")
CONTENT_GROUPS = ("video_clip", "text_clip")  # what the category task may look at: the video's own content
VIDEO_GROUPS = ("video_clip", "text_clip", "video_id", "meta")  # what makes a video's item vector
TOWER_TASKS = ("click", "like", "watch", "category", "context")
INTEREST_TASKS = ("click", "like", "watch")  # what a user thinks of a video; the biases add to these
OFFSETS = {"video_id": ("video_bias",), "user_id": ("user_bias",), "context": ("context_terms",)}  # by group
TASKS = TOWER_TASKS + ("retrieval",)
ARCHS = ("shared-bottom", "mmoe", "ple")
CATALOG_CHUNK = 16384  # catalog videos per pass when every video is encoded or scored (1M at once took over 10 GB)


@dataclass
class NetConfig:
    clip_dim: int
    meta_dim: int
    n_categories: int
    n_devices: int  # including "unknown" at 0
    n_regions: int  # including "unknown" at 0
    user_buckets: int
    video_buckets: int
    arch: str = "mmoe"
    tasks: tuple[str, ...] = TASKS
    groups: tuple[str, ...] = GROUPS  # feature groups switched on (ablations switch some off)
    d: int = 32
    n_experts: int = 4  # mmoe experts; ple shared experts per level
    n_task_experts: int = 1  # ple task-specific experts per task and level
    ple_levels: int = 2
    expert_hidden: int = 128
    expert_dim: int = 64
    tower_hidden: int = 32
    retrieval_dim: int = 32
    dropout: float = 0.1
    id_dropout: float = 0.1  # share of training rows that see the "unknown" user and video id: cold start is learnt
    cross_layers: int = 0  # DCN-v2 cross layers on the interaction vector before the bottom (0: none, as before)
    cross_rank: int = 32  # rank of each cross layer's W = U V (0: full rank)
    biases: bool = True  # per-user and per-video terms on the interest logits, with priors (see `prior_penalty`)
    bias_scale: float = 0.5  # the prior's standard deviation of one such term, on the logit scale
    id_scale: float = 0.05  # with biases: the prior's standard deviation of an id embedding around the unknown id's
    context_terms: bool = False  # factorised context-by-content terms on the interest logits (see `context_terms`)
    extra: dict = field(default_factory=dict)  # room for settings of later versions

    def __post_init__(self) -> None:
        self.tasks, self.groups = tuple(self.tasks), tuple(self.groups)
        if self.arch not in ARCHS:
            raise ValueError(f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHS)}")
        unknown = set(self.tasks) - set(TASKS) or set(self.groups) - set(GROUPS)
        if unknown:
            raise ValueError(f"unknown tasks or feature groups: {sorted(unknown)}")
        if not set(self.groups) & set(CONTENT_GROUPS):
            raise ValueError("the model needs at least one of the video's CLIP embeddings (video_clip, text_clip)")
        if self.cross_layers < 0 or self.cross_rank < 0:
            raise ValueError("cross_layers and cross_rank cannot be negative")
        if self.bias_scale <= 0 or self.id_scale <= 0:
            raise ValueError("bias_scale and id_scale must be positive")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def saved(cls, values: dict) -> NetConfig:
        """The config a saved model was trained with. A field added since takes the value that builds the
        network of before (biases: none; cross layers and context terms are off by default anyway)."""
        return cls(**({"biases": False} | values))

    @property
    def tower_tasks(self) -> tuple[str, ...]:
        return tuple(t for t in self.tasks if t in TOWER_TASKS)

    @property
    def logit_terms(self) -> tuple[bool, bool]:
        """(biases, context terms) as built: both add to the interest logits, so a network without an interest
        task (a single-task category or context network) has neither."""
        interest = bool(set(self.tasks) & set(INTEREST_TASKS))
        return self.biases and interest, self.context_terms and interest

    def output_size(self, task: str) -> int:
        return {"category": self.n_categories, "context": HOUR_SLOTS + self.n_devices}.get(task, 1)


def catalog_chunks(n: int) -> list[torch.Tensor]:
    """Catalog indices 0..n-1 in chunks of CATALOG_CHUNK (one chunk for a catalog that fits)."""
    return [torch.arange(start, min(n, start + CATALOG_CHUNK)) for start in range(0, max(n, 1), CATALOG_CHUNK)]


def in_chunks(rows_to_tensor: Callable[[torch.Tensor], torch.Tensor], n: int) -> torch.Tensor:
    """A per-video computation over the whole catalog, one chunk of rows at a time, concatenated: the same rows,
    without the [n, ...] intermediates of one pass over a large catalog."""
    parts = [rows_to_tensor(rows) for rows in catalog_chunks(n)]
    return torch.cat(parts) if len(parts) > 1 else parts[0]


def mlp(sizes: list[int], dropout: float, last_activation: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers += [nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class Experts(nn.Module):
    """n expert MLPs over the same input; forward gives [B, n, H]."""

    def __init__(self, n: int, sizes: list[int], dropout: float):
        super().__init__()
        self.experts = nn.ModuleList(mlp(sizes, dropout) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([expert(x) for expert in self.experts], 1)


class CrossNet(nn.Module):
    """DCN-v2 cross layers (Wang et al. 2021): x_{l+1} = x_0 * (W_l x_l + b_l) + x_l, W_l full rank [D, D] or
    low rank U_l V_l ([D, r] [r, D]). Each layer adds products of every input coordinate with a learnt linear
    mix of all of them (layer l: polynomials up to degree l + 1), which is how a term like "this hour by this
    category" is stated rather than left for the MLP above to discover. The output keeps the input's width,
    and the residual keeps the input itself in it."""

    def __init__(self, width: int, layers: int, rank: int = 0):
        super().__init__()
        full = rank <= 0 or rank >= width
        self.down = nn.ModuleList(
            nn.Linear(width, width if full else rank, bias=full) for _ in range(layers)
        )  # W (full) or V (low rank)
        self.up = nn.ModuleList(nn.Linear(rank, width) for _ in range(0 if full else layers))  # U, and b
        for layer in [*self.down, *self.up]:
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for i, down in enumerate(self.down):
            mixed = down(x) if not self.up else self.up[i](down(x))
            x = x0 * mixed + x
        return x


def gated_sum(gate: nn.Module, x: torch.Tensor, experts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax gate over experts [B, n, H] from x: (mixture [B, H], gate weights [B, n])."""
    weights = F.softmax(gate(x), dim=-1)
    return (weights.unsqueeze(-1) * experts).sum(1), weights


class CGCLevel(nn.Module):
    """One PLE level (customised gate control): shared experts, each task's own experts, a softmax gate per task
    over its own and the shared experts, and below the last level a gate that mixes all of them into the next
    level's shared input. (The attribute names are the state-dict keys: `levels.0.shared...`.)"""

    def __init__(self, tasks: tuple[str, ...], in_size: int, config: NetConfig, last: bool):
        super().__init__()
        c = config
        sizes = [in_size, c.expert_hidden, c.expert_dim]
        self.tasks = tasks
        self.shared = Experts(c.n_experts, sizes, c.dropout)
        self.specific = nn.ModuleDict({t: Experts(c.n_task_experts, sizes, c.dropout) for t in tasks})
        self.gates = nn.ModuleDict({t: nn.Linear(in_size, c.n_task_experts + c.n_experts) for t in tasks})
        self.shared_gate = None if last else nn.Linear(in_size, c.n_experts + len(tasks) * c.n_task_experts)

    def forward(
        self, inputs: dict[str, torch.Tensor], shared_input: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, torch.Tensor]]:
        """(each task's output [B, H], the next level's shared input [B, H], each task's gate weights [B, n])."""
        shared = self.shared(shared_input)  # [B, n_shared, H]
        specific = {t: self.specific[t](inputs[t]) for t in self.tasks}  # each [B, n_task, H]
        outputs, weights = {}, {}
        for t in self.tasks:
            outputs[t], weights[t] = gated_sum(self.gates[t], inputs[t], torch.cat([specific[t], shared], 1))
        if self.shared_gate is not None:
            everything = torch.cat([shared, *specific.values()], 1)
            shared_input, _ = gated_sum(self.shared_gate, shared_input, everything)
        return outputs, shared_input, weights


class MultiTaskNet(nn.Module):
    # buffers (registered in __init__), declared for the type checker
    user_seen: torch.Tensor
    video_seen: torch.Tensor
    logit_shift: torch.Tensor

    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = c = config
        d = c.d
        # feature group encoders
        self.video_clip = nn.Linear(c.clip_dim, d)
        self.text_clip = nn.Linear(c.clip_dim, d)
        self.video_id = nn.Embedding(c.video_buckets, d)
        self.meta = nn.Linear(c.meta_dim, d)
        self.user_id = nn.Embedding(c.user_buckets, d)
        self.hour = nn.Embedding(HOURS, d)
        self.weekday = nn.Embedding(WEEKDAYS, d)
        self.device = nn.Embedding(c.n_devices, d)
        self.region = nn.Embedding(c.n_regions, d)
        self.query = nn.Linear(d, d, bias=False)  # history attention: candidate -> query
        self.key = nn.Linear(d, d, bias=False)
        for table in (self.video_id, self.user_id, self.hour, self.weekday, self.device, self.region):
            nn.init.normal_(table.weight, std=0.01)
        self.gate_logits = nn.Parameter(torch.full((len(GROUPS),), 2.0))  # sigmoid(2) = 0.88: all open at first
        # buckets seen in training; others (new users and videos) fall back to bucket 0, the learnt "unknown"
        self.register_buffer("user_seen", torch.zeros(c.user_buckets, dtype=torch.bool))
        self.register_buffer("video_seen", torch.zeros(c.video_buckets, dtype=torch.bool))
        # added to click/like logits at prediction: undoes the prior shift that class weighting trains in
        self.register_buffer("logit_shift", torch.zeros(len(TOWER_TASKS)))
        # the catalog (set by `set_catalog`, not saved: it comes from the store)
        self.catalog: dict[str, torch.Tensor] = {}
        self.video_cache: dict[str, torch.Tensor] | None = None

        n_groups = len(GROUPS)
        width = n_groups * d + n_groups * (n_groups - 1) // 2
        sizes = [width, c.expert_hidden, c.expert_dim]
        tasks = c.tower_tasks
        if c.arch == "shared-bottom":
            self.bottom = mlp(sizes, c.dropout)
        elif c.arch == "mmoe":
            self.experts = Experts(c.n_experts, sizes, c.dropout)
            self.expert_gates = nn.ModuleDict({t: nn.Linear(width, c.n_experts) for t in tasks})
        else:  # ple: CGC levels; level 0 reads the interaction vector, later levels the previous level's outputs
            self.levels = nn.ModuleList(
                CGCLevel(tasks, width if level == 0 else c.expert_dim, c, last=level == c.ple_levels - 1)
                for level in range(c.ple_levels)
            )
        self.towers = nn.ModuleDict(
            {t: mlp([c.expert_dim, c.tower_hidden, c.output_size(t)], c.dropout, last_activation=False) for t in tasks}
        )
        if "retrieval" in c.tasks:
            self.user_tower = mlp([3 * d, 2 * d, c.retrieval_dim], c.dropout, last_activation=False)
            self.video_tower = mlp([d, 2 * d, c.retrieval_dim], c.dropout, last_activation=False)
            self.log_scale = nn.Parameter(torch.tensor(2.3))  # logits = exp(log_scale) * cosine; starts at 10
        # made last, and only when asked: without crosses the parameters, their keys and their initial values
        # (the same seed draws the same numbers) are those of the network before crosses existed
        self.cross = CrossNet(width, c.cross_layers, c.cross_rank) if c.cross_layers else None
        self.biased, self.context_crossed = c.logit_terms
        if self.biased:  # zeros at first: the network starts as the one without them
            self.user_bias = nn.Embedding(c.user_buckets, len(INTEREST_TASKS))
            self.video_bias = nn.Embedding(c.video_buckets, len(INTEREST_TASKS))
            nn.init.zeros_(self.user_bias.weight)
            nn.init.zeros_(self.video_bias.weight)
        if self.context_crossed:  # per context field and interest task, a vector dotted with the content
            fields = {"hour": HOURS, "weekday": WEEKDAYS, "device": c.n_devices, "region": c.n_regions}
            tables = {f: nn.Embedding(n, len(INTEREST_TASKS) * d) for f, n in fields.items()}
            for table in tables.values():
                nn.init.zeros_(table.weight)  # zeros at first: the network without them
            self.field_terms = nn.ModuleDict(tables)
        self.gate_weights: dict[str, torch.Tensor] = {}  # the last forward's expert gates, for diagnostics

    # ---- the catalog ------------------------------------------------------------------------------------
    def set_catalog(self, catalog: CatalogTensors) -> None:
        """The per-video features the network looks videos up in (they come from the store, not the checkpoint)."""
        if catalog.video_clip.shape[1] != self.config.clip_dim:
            raise ValueError(
                f"catalog embeddings have {catalog.video_clip.shape[1]} dimensions, "
                f"the network was built for {self.config.clip_dim}"
            )
        self.catalog = {
            "video_clip": catalog.video_clip.float(),
            "text_clip": catalog.text_clip.float(),
            "meta": catalog.meta.float(),
            "bucket": catalog.bucket.long(),
            "category": catalog.category,
        }
        self.video_cache = None

    def cache_videos(self) -> None:
        """Encode the whole catalog once (inference): scoring then only gathers rows."""
        with torch.no_grad():
            self.video_cache = None
            n = len(self.catalog["bucket"])
            parts = [self.encode_videos(rows) for rows in catalog_chunks(n)]
            self.video_cache = {
                k: torch.cat([p[k] for p in parts]) if len(parts) > 1 else parts[0][k] for k in parts[0]
            }

    def encode_videos(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Group vectors and the item vector (their sum) of catalog videos: index [n] -> each [n, d]."""
        if self.video_cache is not None:
            return {k: v[index] for k, v in self.video_cache.items()}
        on = self.config.groups
        bucket = self.catalog["bucket"][index]
        seen = torch.where(self.video_seen[bucket], bucket, torch.zeros_like(bucket))
        bucket = self.drop_ids(seen)
        out = {
            "video_clip": self.video_clip(self.catalog["video_clip"][index]),
            "text_clip": self.text_clip(self.catalog["text_clip"][index]),
            "video_id": self.video_id(bucket),
            "meta": self.meta(self.catalog["meta"][index]),
        }
        out = {g: (v if g in on else torch.zeros_like(v)) for g, v in out.items()}
        out["item"] = sum(out[g] for g in VIDEO_GROUPS)
        if self.biased:  # kept where the id is dropped: the content's part stays the content's
            out["bias"] = self.bias_of(self.video_bias, seen, "video_id" in on)
        return out

    @staticmethod
    def bias_of(table: nn.Embedding, bucket: torch.Tensor, on: bool) -> torch.Tensor:
        """[n, 3] bias terms of the buckets; none (zeros) for the unknown bucket 0, that is for ids training
        never saw: the content and context answer alone."""
        return table(bucket) * ((bucket > 0) & on).unsqueeze(-1)

    def category_logits(self, videos: torch.Tensor, permute: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """[n, C] category logits of catalog videos from their content alone (through the shared experts)."""
        return self(video_batch(videos), keep=CONTENT_GROUPS, permute=permute)["category"]

    def category_probabilities(self, permute: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """[V, C] P(category) of every catalog video, a chunk of videos per pass. permute: {group: order over the
        whole catalog}, as `category_logits` takes it: a chunk's rows are passed beside the rows whose vectors they
        take, so that the shuffle still spans the catalog."""
        n = len(self.catalog["bucket"])

        def logits(rows: torch.Tensor) -> torch.Tensor:
            if not permute or len(rows) == n:
                return self.category_logits(rows, permute)
            ((group, order),) = permute.items()
            m = len(rows)
            swap = torch.cat([torch.arange(m, 2 * m), torch.arange(m)])
            return self.category_logits(torch.cat([rows, order[rows]]), {group: swap})[:m]

        return self.probabilities({"category": in_chunks(logits, n)})["category"]

    # ---- feature groups ---------------------------------------------------------------------------------
    def user_buckets(self, user: torch.Tensor, drop: bool = True) -> torch.Tensor:
        """The users' buckets, 0 for users training never saw (and, drop: in training, for id_dropout's rows)."""
        user = torch.where(self.user_seen[user], user, torch.zeros_like(user))
        return self.drop_ids(user) if drop else user

    def drop_ids(self, bucket: torch.Tensor) -> torch.Tensor:
        """In training, id_dropout's share of the rows gets the unknown bucket 0: cold start is learnt."""
        if self.training and self.config.id_dropout:
            return torch.where(torch.rand(len(bucket)) < self.config.id_dropout, torch.zeros_like(bucket), bucket)
        return bucket

    def context_vector(self, batch: dict) -> torch.Tensor:
        return (
            self.hour(batch["hour"])
            + self.weekday(batch["weekday"])
            + self.device(batch["device"])
            + self.region(batch["region"])
        )

    def groups(self, batch: dict, keep: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """Each feature group's vector [B, d]; groups switched off, or not kept for this task, are zeros."""
        on = [g for g in self.config.groups if keep is None or g in keep]
        history = batch["history"]  # [B, L]
        B, d = len(batch["video"]), self.config.d
        if self.video_cache is not None:  # inference: gather from the encoded catalog
            candidate = {k: v[batch["video"]] for k, v in self.video_cache.items()}  # each [B, d]
            items = self.video_cache["item"][history.clamp(min=0)]  # [B, L, d]
        else:  # training: encode each video of the batch once, candidates and histories alike
            unique, inverse = torch.unique(
                torch.cat([batch["video"], history.clamp(min=0).flatten()]), return_inverse=True
            )
            videos = self.encode_videos(unique)
            candidate = {k: v[inverse[:B]] for k, v in videos.items()}
            items = videos["item"][inverse[B:]].view(B, -1, d)
        out = {g: candidate[g] for g in VIDEO_GROUPS}
        if "history" in on:
            valid = history >= 0  # [B, L]
            attention = (self.key(items) @ self.query(candidate["item"]).unsqueeze(-1)).squeeze(-1) / d**0.5
            attention = F.softmax(attention.masked_fill(~valid, -1e9), dim=-1) * valid  # [B, L]; no history: 0
            out["history"] = (attention.unsqueeze(-1) * items).sum(1)
        user = self.user_buckets(batch["user"], drop=False)
        if "user_id" in on:
            out["user_id"] = self.user_id(self.drop_ids(user))
        if "context" in on:
            out["context"] = self.context_vector(batch)
        zeros = torch.zeros(B, d)
        vectors = {g: out[g] if g in on and g in out else zeros for g in GROUPS}
        if self.biased:  # offsets, not groups: [B, 3] added to the interest logits by `forward`
            vectors["video_bias"] = candidate["bias"] if "video_id" in on else torch.zeros(B, len(INTEREST_TASKS))
            vectors["user_bias"] = self.bias_of(self.user_bias, user, "user_id" in on)
        if self.context_crossed and "context" in on:
            vectors["context_terms"] = self.context_terms(batch, vectors["video_clip"] + vectors["text_clip"])
        return vectors

    def context_terms(self, batch: dict, content: torch.Tensor) -> torch.Tensor:
        """[B, 3] sum over the context fields f of <E_f[value], content> per interest task: "this hour by this
        kind of content", stated on the logit itself (a factorisation machine's field-by-item terms) instead of
        being left to the experts to find in the summed context vector."""
        tasks = len(INTEREST_TASKS)
        total = sum(self.field_terms[f](batch[f]) for f in self.field_terms).view(len(content), tasks, -1)
        return (total * content.unsqueeze(1)).sum(-1)

    def feature_gates(self) -> torch.Tensor:
        return torch.sigmoid(self.gate_logits)  # [G]

    def interaction(self, groups: dict[str, torch.Tensor]) -> torch.Tensor:
        E = torch.stack([groups[g] for g in GROUPS], 1) * self.feature_gates().view(1, -1, 1)  # [B, G, d]
        G = E.shape[1]
        i, j = torch.triu_indices(G, G, offset=1)
        dots = (E @ E.transpose(1, 2))[:, i, j]  # [B, G(G-1)/2]
        return torch.cat([E.flatten(1), dots], 1)

    # ---- the network ------------------------------------------------------------------------------------
    def forward(
        self, batch: dict, keep: tuple[str, ...] | None = None, permute: dict[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """Logits per tower task: click/like/watch [B], category [B, C], context [B, 8 + devices].
        keep: the feature groups this pass may see; permute: {group: row order} shuffles a group's vectors
        across rows (permutation importance)."""
        groups = self.groups(batch, keep)
        for g, order in (permute or {}).items():
            for key in (g, *OFFSETS.get(g, ())):  # an id's bias goes with its group
                if key in groups:
                    groups[key] = groups[key][order]
        x = self.interaction(groups)
        if self.cross is not None:
            x = self.cross(x)
        tasks = self.config.tower_tasks
        self.gate_weights = {}
        if self.config.arch == "shared-bottom":
            shared = self.bottom(x)
            h = {t: shared for t in tasks}
        elif self.config.arch == "mmoe":
            experts = self.experts(x)  # [B, n, H]
            h = {}
            for t in tasks:
                h[t], self.gate_weights[t] = gated_sum(self.expert_gates[t], x, experts)
        else:
            h = self.ple(x)
        out = {t: self.towers[t](h[t]) for t in tasks}
        out = {t: (v.squeeze(-1) if v.shape[-1] == 1 else v) for t, v in out.items()}
        offsets = [groups[k] for keys in OFFSETS.values() for k in keys if k in groups]
        if offsets:
            offset = sum(offsets[1:], offsets[0])
            for i, t in enumerate(INTEREST_TASKS):
                if t in out:
                    out[t] = out[t] + offset[:, i]
        return out

    def prior_penalty(self, rows: int) -> torch.Tensor:
        """The Gaussian priors of the per-user and per-video terms, per training row (the losses are means over
        rows): the biases around 0 (standard deviation bias_scale), and the id embeddings of the ids training saw
        around the unknown id's (id_scale). Against them a term moves only as far as its own rows' evidence pulls,
        so a video seen 5 times keeps near what its content predicts and one seen 500 times gets its own quality
        (random effects, as in a mixed model). Without the second prior the id embedding, which the experts read
        with everything else, memorises the few rows of a rare id that the bias's prior holds back."""
        if not self.biased:
            return torch.zeros(())
        c = self.config
        biases = (self.user_bias.weight.pow(2).sum() + self.video_bias.weight.pow(2).sum()) / c.bias_scale**2
        embeddings = sum(
            ((table.weight - table.weight[0]) * seen.unsqueeze(-1)).pow(2).sum()
            for table, seen in ((self.user_id, self.user_seen), (self.video_id, self.video_seen))
        )
        return (biases + embeddings / c.id_scale**2) / (2 * max(rows, 1))

    def probabilities(self, logits: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Logits -> P(click), P(like | click), E[watch fraction | click], P(category), P(hour slot), P(device)."""
        out = {}
        for t, value in logits.items():
            if t in INTEREST_TASKS:
                out[t] = torch.sigmoid(value + self.logit_shift[TOWER_TASKS.index(t)])
            elif t == "category":
                out[t] = F.softmax(value, -1)
            elif t == "context":
                out["hour_slot"] = F.softmax(value[:, :HOUR_SLOTS], -1)
                out["device"] = F.softmax(value[:, HOUR_SLOTS:], -1)
        return out

    def ple(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        inputs, shared_input = {t: x for t in self.config.tower_tasks}, x
        weights: dict[str, torch.Tensor] = {}
        for level in self.levels:
            inputs, shared_input, weights = level(inputs, shared_input)
        self.gate_weights.update(weights)  # the last level's
        return inputs

    # ---- retrieval: two towers ---------------------------------------------------------------------------
    def user_vectors(self, batch: dict) -> torch.Tensor:
        """[B, r] unit query vectors from the mean of the history's items, the user id and the context."""
        d = self.config.d
        history = batch["history"]
        items = self.encode_videos(history.clamp(min=0).flatten())["item"].view(len(history), -1, d)
        valid = (history >= 0).unsqueeze(-1).float()
        mean = (items * valid).sum(1) / valid.sum(1).clamp(min=1)
        user = self.user_id(self.user_buckets(batch["user"]))
        if "user_id" not in self.config.groups:
            user = torch.zeros_like(user)
        if "history" not in self.config.groups:
            mean = torch.zeros_like(mean)
        context = self.context_vector(batch) if "context" in self.config.groups else torch.zeros_like(user)
        return F.normalize(self.user_tower(torch.cat([mean, user, context], 1)), dim=-1)

    def video_vectors(self, index: torch.Tensor) -> torch.Tensor:
        """[n, r] unit vectors of catalog videos (content, and the id where it was seen in training)."""
        return F.normalize(self.video_tower(self.encode_videos(index)["item"]), dim=-1)

    def retrieval_logits(self, batch: dict) -> torch.Tensor:
        """[B, B] scores of every row's user against every row's video (in-batch negatives)."""
        scale = self.log_scale.clamp(max=4.0).exp()
        return scale * self.user_vectors(batch) @ self.video_vectors(batch["video"]).T

    def shared_parameters(self) -> list[torch.Tensor]:
        """The layer every task's gradient flows through (GradNorm measures gradient norms here)."""
        return [
            m.weight
            for g, m in (("video_clip", self.video_clip), ("text_clip", self.text_clip))
            if g in self.config.groups
        ]
