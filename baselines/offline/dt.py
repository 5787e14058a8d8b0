"""Decision Transformer (``--algo dt``) and Behaviour Cloning Transformer (``--algo bct``).

One causal transformer (minGPT) over a window of the last ``K`` steps of an episode. DT reads the
tokens ``(R_1, s_1, a_1, ..., R_K, s_K, a_K)``, ``R_t`` the return-to-go (the undiscounted sum of
the rewards from step ``t`` to the episode's end), and predicts ``a_t`` from the ``s_t`` token: at
evaluation it is handed the return it should earn and acts like the data that earned it. BCT is
the same network reading ``(s_1, a_1, ..., s_K, a_K)``: imitation with a memory, no return.

What the predecessor got wrong and this file does not (REFERENCE section 7):

* its "DT" was never return-conditioned (DT and BCT trained the same model): here ``dt`` always
  embeds the returns-to-go and ``bct`` never has the tokens (``tests/baselines/offline/test_dt.py``
  shows DT's actions change with the return and BCT has no return input);
* its padding mask was tiled over the tokens, not interleaved, and was not applied in attention:
  here every token carries its step's mask (:func:`token_mask`), a real token never attends a
  padded one, and the loss ignores padded steps;
* it sampled from a softmax including the padding token (action 15): here the head has exactly the
  15 real actions, and the padding token exists only as an input.

Tokens: the state encoder (Nature CNN, frames scaled to [0, 1]) and ``Tanh``; the return
``Tanh(Linear(1, w)(R))``; the action ``Tanh(Embedding(16, w))`` with index 15 for padded steps and
for the not-yet-chosen action of the step being predicted. Each token adds a learned position
among the ``3K`` (or ``2K``) tokens of the window and a learned embedding of its step's timestep in
the episode (clipped to :data:`MAX_TIMESTEP`).

Optimisation as the predecessor: AdamW with betas (0.9, 0.95), weight decay 0.1 on the weights of
linear and convolution layers only (not biases, layer norms, embeddings), gradient norm clipped at
1.0; the learning rate warms up linearly over the predecessor's 10,240 action tokens (2 updates of
512 windows of 10 steps), then follows a cosine to 10% of ``lr`` at the run's last update.

Evaluation (:meth:`DT.evaluation_policy`): a history-aware policy that keeps each running episode's
last ``K`` steps, starts from a target return (``dt_target_return``, else ``dt_eval_ret`` x the
dataset's maximum episode return) and subtracts every reward received; it implements
:class:`offgen.policies.EpisodicPolicy`, so :func:`offgen.evaluation.evaluate` tells it when
each episode starts and what each step earned.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from baselines.common.errors import ConfigError
from baselines.offline.algorithm import DataKind
from offgen.data.schema import NUM_ACTIONS
from offgen.errors import EvaluationError
from offgen.policies import sample_categorical

__all__ = [
    "CONFIG",
    "DATA",
    "DT",
    "DTConfig",
    "DTPolicy",
    "make",
    "make_bct",
    "make_dt",
    "max_episode_return",
]

PAD_ACTION = NUM_ACTIONS
"""Action-embedding index of a padded step (and of the action not yet chosen at evaluation)."""
MAX_TIMESTEP = 1024
"""Timesteps at or beyond this share its embedding (Procgen's episodes end by step 1000)."""
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
BETAS = (0.9, 0.95)
FINAL_LR_FRACTION = 0.1
WARMUP_TOKENS = 10_240
"""The predecessor's warm-up, in predicted actions (``batch_size x K`` per update)."""


@dataclass(frozen=True)
class DTConfig:
    """DT and BCT settings; every field is a ``train_offline`` flag of the same name, or a value the
    loop derives from the run (``total_updates``, ``dataset_max_return``).

    Defaults are the predecessor's final settings (context 10, target 5 x the dataset's max return,
    6 layers, 8 heads, width 128, dropout 0.1, lr 5e-4); its batch (512) and epochs (50) are flags.

    Attributes:
        seed: Seeds the network's initialisation.
        lr: Peak learning rate (after warm-up).
        batch_size: Windows per update (sets the warm-up's length in updates).
        dt_context_length: Steps per window ``K``.
        dt_eval_ret: Evaluation target = this x ``dataset_max_return`` (DT only).
        dt_target_return: An absolute evaluation target; overrides ``dt_eval_ret`` when set.
        dt_n_layer: Transformer blocks.
        dt_n_head: Attention heads per block.
        dt_embed_dim: Token width ``w`` (a multiple of ``dt_n_head``).
        dt_dropout: Dropout on embeddings, attention and residuals.
        total_updates: The run's updates: the cosine reaches 10% of ``lr`` there (0: no decay).
        dataset_max_return: The training data's largest episode return (:func:`max_episode_return`).
    """

    seed: int = 88
    lr: float = 5e-4
    batch_size: int = 512
    dt_context_length: int = 10
    dt_eval_ret: float = 5.0
    dt_target_return: float | None = None
    dt_n_layer: int = 6
    dt_n_head: int = 8
    dt_embed_dim: int = 128
    dt_dropout: float = 0.1
    total_updates: int = 0
    dataset_max_return: float | None = None

    def __post_init__(self) -> None:
        positive = ("batch_size", "dt_context_length", "dt_n_layer", "dt_n_head", "dt_embed_dim")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.dt_embed_dim % self.dt_n_head:
            raise ConfigError(
                f"--dt_embed_dim {self.dt_embed_dim} must be a multiple of --dt_n_head "
                f"{self.dt_n_head}"
            )
        if not 0.0 <= self.dt_dropout < 1.0:
            raise ConfigError(f"--dt_dropout must be in [0, 1), got {self.dt_dropout}")
        if self.lr <= 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr}")

    @property
    def warmup_updates(self) -> int:
        """Updates of linear warm-up: :data:`WARMUP_TOKENS` predicted actions."""
        return math.ceil(WARMUP_TOKENS / (self.batch_size * self.dt_context_length))


CONFIG = DTConfig
DATA: Literal["windows"] = "windows"


# --- the network ------------------------------------------------------------------------------


def token_mask(mask: torch.Tensor, tokens_per_step: int) -> torch.Tensor:
    """``(B, K)`` step mask -> ``(B, K * tokens_per_step)``: each token carries its own step's mask.

    Interleaved like the tokens (``R_1, s_1, a_1, R_2, ...``), not tiled (``m_1..m_K, m_1..m_K``,
    the predecessor's bug, which marks the wrong tokens as padding).
    """
    return mask.repeat_interleave(tokens_per_step, dim=1)


def attention_mask(real: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` real tokens -> ``(B, 1, T, T)`` bool: which keys each query may attend.

    Causal, and no query attends a padded key except itself (a padded query must attend something;
    what it computes is never read by a real token or by the loss).
    """
    length = real.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=real.device).tril()
    itself = torch.eye(length, dtype=torch.bool, device=real.device)
    return (causal & (real[:, None, :] | itself))[:, None]


class _SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)
        out: torch.Tensor = self.resid_drop(self.proj(y.transpose(1, 2).reshape(b, t, w)))
        return out


class _Block(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = _SelfAttention(width, heads, dropout)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), allowed)
        out: torch.Tensor = x + self.mlp(self.ln2(x))
        return out


def _state_encoder(width: int) -> nn.Sequential:
    """The predecessor's DT encoder: Nature CNN, Linear(1024, w), Tanh (64x64 frames)."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 8, stride=4),
        nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * 4 * 4, width),
        nn.Tanh(),
    )


class DecisionGPT(nn.Module):
    """The transformer of DT (``return_conditioned=True``) and BCT (``False``).

    Args:
        config: Sizes and dropout.
        return_conditioned: Whether each step has a return-to-go token (DT) or not (BCT).
    """

    def __init__(self, config: DTConfig, return_conditioned: bool) -> None:
        super().__init__()
        w, k = config.dt_embed_dim, config.dt_context_length
        self.return_conditioned = return_conditioned
        self.tokens_per_step = 3 if return_conditioned else 2
        self.state_encoder = _state_encoder(w)
        self.return_embedding = (
            nn.Sequential(nn.Linear(1, w), nn.Tanh()) if return_conditioned else None
        )
        self.action_embedding = nn.Sequential(nn.Embedding(NUM_ACTIONS + 1, w), nn.Tanh())
        self.position = nn.Parameter(torch.zeros(1, self.tokens_per_step * k, w))
        self.timestep_embedding = nn.Embedding(MAX_TIMESTEP, w)
        self.drop = nn.Dropout(config.dt_dropout)
        self.blocks = nn.ModuleList(
            _Block(w, config.dt_n_head, config.dt_dropout) for _ in range(config.dt_n_layer)
        )
        self.ln_f = nn.LayerNorm(w)
        self.head = nn.Linear(w, NUM_ACTIONS, bias=False)  # the 15 real actions, never padding
        self.apply(_gpt_init)

    def forward(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        returns_to_go: torch.Tensor,
        timesteps: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """``(B, K, 15)`` logits of ``a_t`` read at each ``s_t`` token.

        Args:
            states: ``(B, K, 3, 64, 64)`` uint8 frames.
            actions: ``(B, K)`` int64; padded steps may hold anything.
            returns_to_go: ``(B, K)`` float (ignored by BCT).
            timesteps: ``(B, K)`` int64 step within the episode.
            mask: ``(B, K)`` bool, true at real steps.
        """
        b, k = mask.shape
        frames = states.reshape(b * k, *states.shape[-3:]).float() / 255.0
        s = self.state_encoder(frames).view(b, k, -1)
        a = self.action_embedding(torch.where(mask, actions, PAD_ACTION))
        parts = [s, a]
        if self.return_embedding is not None:
            parts.insert(0, self.return_embedding(returns_to_go.float().unsqueeze(-1)))
        tokens = torch.stack(parts, dim=2)  # (B, K, tokens_per_step, w): interleaved per step
        tokens = tokens + self.timestep_embedding(timesteps.clamp(0, MAX_TIMESTEP - 1))[:, :, None]
        x = tokens.reshape(b, k * self.tokens_per_step, -1) + self.position[:, : k * len(parts)]
        x = self.drop(x)
        allowed = attention_mask(token_mask(mask, self.tokens_per_step))
        for block in self.blocks:
            x = block(x, allowed)
        x = self.ln_f(x).view(b, k, self.tokens_per_step, -1)
        state_token = 1 if self.return_conditioned else 0
        out: torch.Tensor = self.head(x[:, :, state_token])
        return out


def _gpt_init(module: nn.Module) -> None:
    # minGPT's initialisation: small normal weights keep the Tanh embeddings out of saturation.
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# --- loss and optimisation --------------------------------------------------------------------


def action_loss(logits: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the data's actions over real steps only (padding contributes 0)."""
    return F.cross_entropy(logits[mask], actions[mask])


def lr_multiplier(step: int, warmup: int, decay: int) -> float:
    """Linear warm-up over ``warmup`` updates, then a cosine from 1 to 0.1 at update ``decay``
    (``decay <= warmup``: none)."""
    if step < warmup:
        return (step + 1) / warmup
    if decay <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, decay - warmup))
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return FINAL_LR_FRACTION + (1.0 - FINAL_LR_FRACTION) * cosine


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.AdamW:
    """AdamW with weight decay on linear and convolution weights only (minGPT's groups)."""
    decay: list[nn.Parameter] = []
    plain: list[nn.Parameter] = []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            weighted = name == "weight" and isinstance(module, (nn.Linear, nn.Conv2d))
            (decay if weighted else plain).append(param)
    groups = [
        {"params": decay, "weight_decay": WEIGHT_DECAY},
        {"params": plain, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=BETAS)


# --- the algorithm ----------------------------------------------------------------------------


class DT:
    """DT or BCT as an :class:`~baselines.offline.algorithm.OfflineAlgorithm` (windows data).

    Args:
        config: The settings.
        device: Training device.
        return_conditioned: ``True`` for DT, ``False`` for BCT.
    """

    data: DataKind = DATA

    def __init__(self, config: DTConfig, device: torch.device, return_conditioned: bool) -> None:
        self.config = config
        self.name = "dt" if return_conditioned else "bct"
        self.device = torch.device(device)
        torch.manual_seed(config.seed)
        self.model = DecisionGPT(config, return_conditioned).to(self.device)
        self.optimizer = make_optimizer(self.model, config.lr)

    def modules(self) -> Mapping[str, Any]:
        """The transformer, under ``model``."""
        return {"model": self.model}

    def optimizers(self) -> Mapping[str, Any]:
        """The AdamW optimiser, under ``optimizer``."""
        return {"optimizer": self.optimizer}

    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        """One AdamW step on a window batch; the rate follows the schedule at ``step``."""
        cfg = self.config
        rate = cfg.lr * lr_multiplier(step, cfg.warmup_updates, cfg.total_updates)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        self.model.train()
        mask = batch["mask"].bool()
        logits = self.model(
            batch["states"], batch["actions"], batch["returns_to_go"], batch["timesteps"], mask
        )
        loss = action_loss(logits, batch["actions"], mask)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), GRAD_CLIP)
        self.optimizer.step()
        return {"loss": float(loss.detach()), "grad_norm": float(grad_norm), "lr": rate}

    def probabilities(self, obs: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        """Not available: DT and BCT act from each episode's history.

        Raises:
            EvaluationError: Always; evaluate :meth:`evaluation_policy` instead.
        """
        raise EvaluationError(
            f"{self.name} acts from each episode's history, not one observation: evaluate "
            f"{self.name}.evaluation_policy() with offgen.evaluation.evaluate"
        )

    def target_return(self) -> float:
        """The evaluation target: ``dt_target_return``, else ``dt_eval_ret`` x the dataset's max.

        Raises:
            ConfigError: If DT has neither (BCT needs none and gets 0).
        """
        cfg = self.config
        if self.name == "bct":
            return 0.0
        if cfg.dt_target_return is not None:
            return float(cfg.dt_target_return)
        if cfg.dataset_max_return is None:
            raise ConfigError(
                "dt needs an evaluation target: pass --dt_target_return, or give the config the "
                "dataset's max return (dataset_max_return) for --dt_eval_ret to multiply"
            )
        return float(cfg.dt_eval_ret * cfg.dataset_max_return)

    def evaluation_policy(self, metadata: Mapping[str, Any] | None = None) -> DTPolicy:
        """A history-aware policy for :func:`offgen.evaluation.evaluate` (see :class:`DTPolicy`).

        Args:
            metadata: Facts for the evaluation report (the run, the update), added to the
                algorithm, its target return and its settings.
        """
        target = self.target_return()
        meta = {"algo": self.name, "target_return": target, "config": asdict(self.config)}
        meta.update(metadata or {})
        return DTPolicy(
            self.model, self.config.dt_context_length, target, f"offline-{self.name}", meta
        )


def make_dt(config: DTConfig, device: torch.device) -> DT:
    """The Decision Transformer (return-conditioned)."""
    return DT(config, device, return_conditioned=True)


def make_bct(config: DTConfig, device: torch.device) -> DT:
    """The Behaviour Cloning Transformer (no return tokens)."""
    return DT(config, device, return_conditioned=False)


make = make_dt


def max_episode_return(dataset: Any) -> float:
    """The largest undiscounted episode return of an ``OffgenDataset``'s selection, every episode
    counted (the predecessor's skipped the last one)."""
    returns = np.asarray(dataset.table.returns, dtype=np.float64)
    if returns.size == 0:
        raise ConfigError("the dataset selects no episodes; it has no max return for --dt_eval_ret")
    return float(returns.max())


# --- acting -----------------------------------------------------------------------------------


@dataclass
class _History:
    """One running episode: its last ``K - 1`` committed steps and the return still to earn."""

    return_to_go: float
    context: int
    timestep: int = 0
    pending: npt.NDArray[np.uint8] | None = None
    steps: deque[tuple[npt.NDArray[np.uint8], int, float, int]] = field(default_factory=deque)

    def commit(self, action: int, reward: float) -> None:
        if self.pending is None:
            raise EvaluationError("observe() for a slot that was not asked for an action")
        self.steps.append((self.pending, action, self.return_to_go, self.timestep))
        while len(self.steps) > self.context - 1:
            self.steps.popleft()
        self.pending = None
        self.return_to_go -= reward
        self.timestep += 1


class DTPolicy:
    """DT / BCT acting in evaluation: an :class:`offgen.policies.EpisodicPolicy`.

    Each slot's episode starts at the target return; each step the window is that slot's last
    ``K - 1`` steps plus the current observation (left-padded, as in training), the action comes
    from the logits of the current state token over the 15 real actions, and the reward received is
    subtracted from the slot's return-to-go.

    Args:
        model: The trained transformer (switched to eval mode while acting, then restored).
        context: ``K``.
        target: The return each episode starts from.
        policy_id: Recorded in the evaluation report.
        metadata: JSON-able facts for the report.
    """

    def __init__(
        self,
        model: DecisionGPT,
        context: int,
        target: float,
        policy_id: str,
        metadata: Mapping[str, Any],
    ) -> None:
        self.model, self.context, self.target = model, context, target
        self.policy_id, self.metadata = policy_id, dict(metadata)
        self._slots: dict[int, _History] = {}
        self._rows: npt.NDArray[np.int64] | None = None

    def start_episode(self, slot: int) -> None:
        """``slot`` begins an episode at the target return."""
        self._slots[slot] = _History(self.target, self.context)

    def set_slots(self, slots: npt.NDArray[np.int64]) -> None:
        """Rows of the next call belong to these slots."""
        self._rows = np.asarray(slots, dtype=np.int64)

    def return_to_go(self, slot: int) -> float:
        """The return ``slot``'s episode still has to earn (target minus rewards so far)."""
        return self._slots[slot].return_to_go

    def observe(
        self,
        slots: npt.NDArray[np.int64],
        actions: npt.NDArray[np.int64],
        rewards: npt.NDArray[np.float64],
        ended: npt.NDArray[np.bool_],
    ) -> None:
        """Commit each slot's step and subtract its reward; forget ended episodes."""
        for slot, action, reward, done in zip(slots.tolist(), actions, rewards, ended, strict=True):
            if done:
                self._slots.pop(slot, None)
            else:
                self._slots[slot].commit(int(action), float(reward))

    def probabilities(self, obs: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        """``(N, 15)`` probabilities for HWC (or CHW) frames of the slots given to :meth:`set_slots`.

        Raises:
            EvaluationError: If the rows' slots are unknown (the policy was not driven by
                :func:`offgen.evaluation.evaluate`, which starts episodes and names slots).
        """
        rows = self._rows
        if rows is None or len(rows) != len(obs) or any(int(s) not in self._slots for s in rows):
            raise EvaluationError(
                f"{self.policy_id} acts from each episode's history: run it through "
                "offgen.evaluation.evaluate, which starts episodes and names each row's slot"
            )
        frames = obs if obs.shape[-3] == 3 else np.moveaxis(obs, -1, -3)
        histories = [self._slots[int(s)] for s in rows]
        for history, frame in zip(histories, frames, strict=True):
            history.pending = np.ascontiguousarray(frame)
        window = self._window(histories)
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            logits = self.model(*window)[:, -1]
        self.model.train(was_training)
        probs: npt.NDArray[np.float64] = torch.softmax(logits.double(), dim=-1).cpu().numpy()
        return probs

    def act(self, obs: npt.NDArray[np.uint8], uniforms: npt.NDArray[np.float64]) -> Any:
        """An action sampled from :meth:`probabilities` with the given uniforms."""
        return sample_categorical(self.probabilities(obs), uniforms)

    def _window(self, histories: list[_History]) -> tuple[torch.Tensor, ...]:
        """Left-padded ``(N, K)`` windows: committed steps, then the pending observation."""
        n, k = len(histories), self.context
        states = np.zeros((n, k, 3, 64, 64), dtype=np.uint8)
        actions = np.full((n, k), PAD_ACTION, dtype=np.int64)
        rtg = np.zeros((n, k), dtype=np.float32)
        timesteps = np.zeros((n, k), dtype=np.int64)
        mask = np.zeros((n, k), dtype=np.bool_)
        for row, h in enumerate(histories):
            assert h.pending is not None
            steps = [*h.steps, (h.pending, PAD_ACTION, h.return_to_go, h.timestep)]
            for col, (frame, action, ret, t) in enumerate(steps, start=k - len(steps)):
                states[row, col], actions[row, col] = frame, action
                rtg[row, col], timesteps[row, col], mask[row, col] = ret, t, True
        device = next(self.model.parameters()).device
        arrays = (states, actions, rtg, timesteps, mask)
        return tuple(torch.from_numpy(a).to(device) for a in arrays)
