"""DT and BCT: returns-to-go, the interleaved padding mask in attention and in the loss, return
conditioning (DT) and its absence (BCT), acting from each episode's history, and a few updates."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.common.errors import ConfigError  # noqa: E402
from baselines.offline import bct, dt  # noqa: E402
from baselines.offline.algorithm import HistoryAlgorithm  # noqa: E402
from baselines.offline.dt import (  # noqa: E402
    DT,
    DTConfig,
    action_loss,
    lr_multiplier,
    max_episode_return,
    token_mask,
)
from offgen.data import make_episode  # noqa: E402
from offgen.errors import EvaluationError  # noqa: E402
from offgen.policies import EpisodicPolicy, Policy  # noqa: E402

torch.set_num_threads(1)
CPU = torch.device("cpu")
TINY = DTConfig(
    seed=0, dt_context_length=4, dt_n_layer=2, dt_n_head=2, dt_embed_dim=16, dataset_max_return=2.0
)


def _with(**changes: Any) -> DTConfig:
    return dataclasses.replace(TINY, **changes)


def _episode(rewards: list[float], seed: int) -> Any:
    rng = np.random.default_rng(seed)
    n = len(rewards)
    frames = rng.integers(0, 256, (n + 1, 64, 64, 3), dtype=np.uint8)
    return make_episode(frames, rng.integers(0, 15, n), np.array(rewards), game="coinrun")


def _batch(b: int = 3, k: int = 4, seed: int = 0) -> dict[str, Any]:
    """Windows padded on the left (row 0), on the right (row 1) and not at all (row 2)."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, k, dtype=torch.bool)
    mask[0, :2] = False
    mask[1, 3:] = False
    return {
        "states": torch.randint(0, 256, (b, k, 3, 64, 64), generator=g, dtype=torch.uint8),
        "actions": torch.randint(0, 15, (b, k), generator=g),
        "returns_to_go": torch.rand(b, k, generator=g) * 10,
        "timesteps": torch.randint(0, 50, (b, k), generator=g),
        "mask": mask,
    }


def _logits(algo: DT, batch: dict[str, Any]) -> Any:
    algo.model.eval()
    with torch.no_grad():
        keys = ("states", "actions", "returns_to_go", "timesteps", "mask")
        return algo.model(*(batch[key] for key in keys))


def test_returns_to_go_from_a_hand_computed_episode(tmp_path: Path, dataset_factory: Any) -> None:
    # rtg_t = sum of rewards from t to the end: [1, 0, 2, 3, 0.5] -> [6.5, 5.5, 5.5, 3.5, 0.5].
    ds = dataset_factory(tmp_path / "s", [_episode([4.0, 4.0], 1), _episode([1, 0, 2, 3, 0.5], 2)])
    expected = {0: 6.5, 1: 5.5, 2: 5.5, 3: 3.5, 4: 0.5}
    windows = ds.windows(context=3, batch_size=64, seed=0, layout="CHW", progress=False)
    starts: set[int] = set()
    for _ in range(4):
        w = next(windows)
        for row in np.flatnonzero(w.episode == 1):
            real = w.mask[row]
            got = dict(
                zip(
                    w.timesteps[row][real].tolist(),
                    w.returns_to_go[row][real].tolist(),
                    strict=True,
                )
            )
            assert got == {t: expected[t] for t in got}
            assert (w.returns_to_go[row][~real] == 0).all()
            starts.add(int(w.timesteps[row][real][0]))
    # Every step starts windows, the last ones too (the predecessor's length N - 3K cut them).
    assert starts == set(expected)
    # The max return counts every episode, the last one included (the predecessor skipped it).
    assert max_episode_return(ds) == 8.0
    assert max_episode_return(dataset_factory(tmp_path / "t", [_episode([1.0], 3)])) == 1.0
    # The loop hands update() every WindowBatch field as a tensor; DT trains on them as they are.
    fields = vars(next(ds.windows(context=4, batch_size=8, seed=1, layout="CHW", progress=False)))
    algo = dt.make(TINY, CPU)
    logged = algo.update({key: torch.from_numpy(np.asarray(v)) for key, v in fields.items()}, 0)
    assert set(logged) == {"loss", "grad_norm", "lr"} and math.isfinite(logged["loss"])


def test_the_padding_mask_is_interleaved_per_token() -> None:
    mask = torch.tensor([[False, True, True]])
    got = token_mask(mask, 3)[0].tolist()
    assert got == [False] * 3 + [True] * 6  # (R1, s1, a1) padded; steps 2 and 3 real
    tiled = mask.repeat(1, 3)[0].tolist()  # the predecessor's mask marks R2, a1, s3 as padding
    assert got != tiled
    assert token_mask(mask, 2)[0].tolist() == [False, False, True, True, True, True]


@pytest.mark.parametrize("make", [dt.make, bct.make])
def test_padded_inputs_do_not_change_outputs_at_real_steps(make: Any) -> None:
    algo = make(TINY, CPU)
    batch = _batch()
    pad = ~batch["mask"]
    other = dict(batch)
    g = torch.Generator().manual_seed(1)
    noise = torch.randint(0, 256, batch["states"].shape, generator=g, dtype=torch.uint8)
    other["states"] = torch.where(pad[..., None, None, None], noise, batch["states"])
    other["actions"] = torch.where(pad, 14 - batch["actions"], batch["actions"])
    other["returns_to_go"] = torch.where(pad, 1000.0, batch["returns_to_go"])
    other["timesteps"] = torch.where(pad, 999, batch["timesteps"])
    real = batch["mask"]
    assert torch.allclose(_logits(algo, batch)[real], _logits(algo, other)[real], atol=1e-6)
    # Control: the same perturbation read as real steps (no mask, the predecessor's attention)
    # does change the real steps' outputs, so the equality above is the mask's doing.
    unmasked = {**batch, "mask": torch.ones_like(real)}
    changed = {**other, "mask": torch.ones_like(real)}
    assert not torch.allclose(_logits(algo, unmasked)[real], _logits(algo, changed)[real])


def test_the_loss_ignores_padding_hand_computed() -> None:
    logits = torch.zeros(1, 3, 15)
    logits[0, 0, 7] = 50.0  # a padded step: counted, it would dominate the loss
    logits[0, 2, 3] = math.log(2.0)  # p(3) = 2 / (14 + 2) = 1/8
    actions = torch.tensor([[0, 9, 3]])
    mask = torch.tensor([[False, True, True]])
    expected = (math.log(15.0) + math.log(8.0)) / 2  # mean over the two real steps
    assert action_loss(logits, actions, mask).item() == pytest.approx(expected, rel=1e-6)


def test_dt_reads_returns_and_bct_has_none() -> None:
    dt_algo, bct_algo = dt.make(TINY, CPU), bct.make(TINY, CPU)
    assert (dt_algo.name, bct_algo.name, dt.DATA, bct.DATA) == ("dt", "bct", "windows", "windows")
    assert isinstance(dt_algo, HistoryAlgorithm) and isinstance(bct_algo, HistoryAlgorithm)
    batch = _batch()
    higher = {**batch, "returns_to_go": batch["returns_to_go"] + 5.0}
    real = batch["mask"]
    assert not torch.allclose(_logits(dt_algo, batch)[real], _logits(dt_algo, higher)[real])
    assert torch.equal(_logits(bct_algo, batch), _logits(bct_algo, higher))
    assert bct_algo.model.return_embedding is None
    assert bct_algo.model.position.shape[1] == 2 * TINY.dt_context_length
    assert dt_algo.model.position.shape[1] == 3 * TINY.dt_context_length


def _drive(policy: Any, slots: list[int], obs: Any) -> Any:
    policy.set_slots(np.array(slots, dtype=np.int64))
    return policy.probabilities(obs)


def test_acting_keeps_the_last_k_steps_and_decrements_the_target() -> None:
    algo = dt.make(TINY, CPU)
    policy = algo.evaluation_policy()
    assert isinstance(policy, EpisodicPolicy) and isinstance(policy, Policy)
    assert policy.target == TINY.dt_eval_ret * 2.0
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (7, 2, 64, 64, 3), dtype=np.uint8)  # HWC, two slots
    rewards = [1.5, 0.0, 2.0, 1.0, 0.5, 0.0]
    policy.start_episode(0)
    policy.start_episode(1)
    for t in range(6):
        probs = _drive(policy, [0, 1], frames[t])
        assert probs.shape == (2, 15) and np.allclose(probs.sum(axis=1), 1.0)
        policy.observe(
            np.array([0, 1]), np.array([t, 14]), np.array([rewards[t], 0.0]), np.zeros(2, bool)
        )
    assert policy.return_to_go(0) == pytest.approx(10.0 - sum(rewards))
    assert policy.return_to_go(1) == 10.0
    # Step 6 of slot 0 reads steps 3..6: frames, actions, returns-to-go and timesteps, left to right.
    k = TINY.dt_context_length
    chw = torch.from_numpy(np.moveaxis(frames[3:7, 0], -1, 1))[None]
    rtg = torch.tensor([[10.0 - sum(rewards[:t]) for t in range(3, 7)]])
    window = (chw, torch.tensor([[3, 4, 5, 15]]), rtg, torch.arange(3, 7)[None])
    algo.model.eval()
    with torch.no_grad():
        expected = torch.softmax(algo.model(*window, torch.ones(1, k, dtype=torch.bool))[0, -1], 0)
    got = _drive(policy, [0], frames[6, :1])
    assert np.allclose(got[0], expected.double().numpy(), atol=1e-6)


def test_acting_never_emits_an_invalid_action_and_needs_its_episodes() -> None:
    algo = dt.make(TINY, CPU)
    policy = algo.evaluation_policy()
    obs = np.zeros((3, 64, 64, 3), dtype=np.uint8)
    with pytest.raises(EvaluationError, match=r"offgen\.evaluation\.evaluate"):
        policy.probabilities(obs)  # not driven: no slots, no episodes
    with pytest.raises(EvaluationError, match="evaluation_policy"):
        algo.probabilities(obs)
    for slot in range(3):
        policy.start_episode(slot)
    policy.set_slots(np.arange(3))
    actions = policy.act(obs, np.array([0.0, 0.5, 1.0 - 1e-12]))
    assert actions.dtype == np.int64 and ((actions >= 0) & (actions < 15)).all()
    assert actions[2] == 14  # the top of the CDF is the last real action, never padding


@pytest.mark.slow  # ~25 s: sampled coinrun episodes run long
def test_acting_on_real_coinrun_through_evaluate() -> None:
    pytest.importorskip("envpool")
    from offgen.evaluation import evaluate

    algo = dt.make(_with(dataset_max_return=10.0), CPU)
    report = evaluate(
        algo.evaluation_policy({"run": "test"}),
        game="coinrun",
        splits="validation",
        episodes=2,
        seed=0,
        num_envs=2,
        action="sample",
    )
    episodes = report.splits["validation"].episodes
    assert len(episodes) == 2 and all(e.length > 0 for e in episodes)
    assert report.settings["policy"]["target_return"] == 50.0
    assert report.settings["policy"]["run"] == "test" and report.policy_id == "offline-dt"


def test_target_return_absolute_or_a_multiple_of_the_max() -> None:
    assert dt.make(_with(dt_target_return=7.0), CPU).target_return() == 7.0
    assert dt.make(_with(dataset_max_return=3.0), CPU).target_return() == 15.0
    with pytest.raises(ConfigError, match="--dt_target_return"):
        dt.make(_with(dataset_max_return=None), CPU).target_return()
    assert bct.make(_with(dataset_max_return=None), CPU).target_return() == 0.0


def test_bad_settings_name_the_flag() -> None:
    with pytest.raises(ConfigError, match="--dt_embed_dim 10 must be a multiple of --dt_n_head 4"):
        DTConfig(dt_embed_dim=10, dt_n_head=4)
    with pytest.raises(ConfigError, match="--dt_context_length"):
        DTConfig(dt_context_length=0)


def test_schedule_warms_up_then_decays_to_ten_percent() -> None:
    assert lr_multiplier(0, 4, 104) == 0.25 and lr_multiplier(3, 4, 104) == 1.0
    assert lr_multiplier(4, 4, 104) == 1.0
    assert lr_multiplier(54, 4, 104) == pytest.approx(0.55)
    assert lr_multiplier(104, 4, 104) == pytest.approx(0.1)
    assert lr_multiplier(10_000, 4, 104) == pytest.approx(0.1)  # stays (no rise past the horizon)
    assert lr_multiplier(50, 4, 0) == 1.0  # no horizon: constant after warm-up
    # The predecessor's 10,240 warm-up tokens: 2 updates of 512 windows of 10 steps.
    assert DTConfig().warmup_updates == 2 and _with(batch_size=8).warmup_updates == 320


def test_weight_decay_on_weights_only() -> None:
    algo = dt.make(TINY, CPU)
    decayed, plain = algo.optimizer.param_groups
    names = {id(p): n for n, p in algo.model.named_parameters()}
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(names[id(p)].endswith("weight") for p in decayed["params"])
    assert "position" in {names[id(p)] for p in plain["params"]}
    embeddings = ("action_embedding.0.weight", "timestep_embedding.weight")
    assert not any(names[id(p)] in embeddings or "ln" in names[id(p)] for p in decayed["params"])
    assert algo.optimizer.defaults["betas"] == (0.9, 0.95)


def _conditioned_batch() -> dict[str, Any]:
    """One real step per window (no earlier action to copy), identical states; the action is 1
    where the return-to-go is high and 2 where it is low."""
    b, k = 16, 4
    high = (torch.arange(b) % 2 == 0)[:, None].expand(b, k)
    mask = torch.zeros(b, k, dtype=torch.bool)
    mask[:, -1] = True
    return {
        "states": torch.full((b, k, 3, 64, 64), 100, dtype=torch.uint8),
        "actions": torch.where(high, 1, 2),
        "returns_to_go": torch.where(high, 10.0, 0.0),
        "timesteps": torch.zeros(b, k, dtype=torch.int64),
        "mask": mask,
    }


def test_a_few_updates_learn_and_only_dt_uses_the_return() -> None:
    batch = _conditioned_batch()
    config = _with(lr=3e-3, dt_dropout=0.0, batch_size=10_000)  # no warm-up, no decay
    losses: dict[str, list[float]] = {}
    for make in (dt.make, bct.make):
        algo = make(config, CPU)
        losses[algo.name] = [algo.update(batch, step)["loss"] for step in range(60)]
    assert losses["dt"][-1] < 0.1 * losses["dt"][0]  # from ~log 15 to near 0
    # Without returns the two actions are indistinguishable: BCT cannot go below log 2.
    assert losses["bct"][-1] > 0.9 * math.log(2.0)
    assert losses["bct"][-1] < 0.5 * losses["bct"][0]  # but it did learn the two actions
