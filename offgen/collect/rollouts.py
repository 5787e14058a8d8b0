"""Training rollouts as a dataset: a training loop hands its steps to a recorder.

A PPO loop (or any loop stepping an envpool Procgen environment) calls
:meth:`RolloutRecorder.start` with ``env.reset()``'s output and :meth:`RolloutRecorder.step` (or
:meth:`RolloutRecorder.add_rollout` for a whole ``(T, N)`` rollout) with every step; finished
episodes are written to the store as they end, tagged with the policy version that started them
(``<policy_id>@<version>``, registered in ``policies.json`` with its version), so the whole
training log becomes a dataset (the predecessor's 25M "suboptimal" kind). Unfinished episodes at
:meth:`RolloutRecorder.close` are discarded.

Example::

    with RolloutRecorder.create("runs/ppo_log", spec, num_envs=64) as rec:
        obs, info = env.reset()
        rec.start(obs, info)
        for update in range(num_updates):
            for t in range(256):
                action = agent.act(obs)
                obs, reward, term, trunc, info = env.step(action)
                rec.step(action, obs, reward, term, trunc, info, policy_version=update)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from offgen.collect.assembler import EpisodeAssembler
from offgen.data.schema import Layout, make_episode
from offgen.data.writer import StoreWriter, WriteMode
from offgen.envs.procgen import EnvSpec

__all__ = ["RolloutRecorder"]


class RolloutRecorder:
    """Write the episodes of a training loop's vectorised rollouts into a store.

    Args:
        writer: An open :class:`~offgen.data.StoreWriter` of the same game.
        num_envs: Environments of the training loop.
        policy_id: Base id of the learning policy (versions are appended).
        layout: Layout of the observations the loop passes (``"CHW"``: envpool's default).
        max_steps_hint: Longest expected episode.
    """

    def __init__(
        self,
        writer: StoreWriter,
        *,
        num_envs: int,
        policy_id: str = "ppo",
        layout: Layout = "CHW",
        max_steps_hint: int = 1000,
    ) -> None:
        self.writer = writer
        self.policy_id = policy_id
        self.layout = layout
        # _hwc always hands the assembler a fresh array, so it may keep them without copying.
        self._asm = EpisodeAssembler(num_envs, max_steps_hint, borrow_observations=True)
        self._version = np.zeros(num_envs, dtype=np.int64)
        self._current_version = 0
        self.episodes_written = 0

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        spec: EnvSpec,
        *,
        num_envs: int,
        policy_id: str = "ppo",
        layout: Layout = "CHW",
        mode: WriteMode = "create",
        dataset: str | None = "training_log",
    ) -> RolloutRecorder:
        """Open a store for ``spec``'s game and return a recorder writing into it."""
        writer = StoreWriter(
            path,
            game=spec.game,
            mode=mode,
            dataset=dataset,
            env_options=spec.to_dict(),
            provenance={"collector": "offgen.collect.rollouts", "policy": policy_id},
        )
        return cls(
            writer,
            num_envs=num_envs,
            policy_id=policy_id,
            layout=layout,
            max_steps_hint=spec.max_episode_steps,
        )

    def _hwc(self, obs: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
        """A fresh HWC uint8 copy: the training loop may reuse its observation buffers."""
        arr = np.asarray(obs, dtype=np.uint8)
        if self.layout == "CHW":
            return np.ascontiguousarray(arr.transpose(0, 2, 3, 1))
        return arr.copy()

    def start(
        self, obs: npt.NDArray[Any], info: Mapping[str, Any], policy_version: int = 0
    ) -> None:
        """Begin with ``env.reset()``'s observations and info."""
        self._asm.begin(self._hwc(obs), info)
        self._version[:] = policy_version
        self._current_version = policy_version

    def step(
        self,
        actions: npt.NDArray[Any],
        obs: npt.NDArray[Any],
        rewards: npt.NDArray[Any],
        terminated: npt.NDArray[Any],
        truncated: npt.NDArray[Any],
        info: Mapping[str, Any],
        *,
        policy_version: int | None = None,
    ) -> int:
        """Record one step: the actions sent and ``env.step``'s outputs.

        Args:
            policy_version: The learner's version (e.g. the update number) that chose ``actions``;
                an episode is tagged with the version that played its first step.

        Returns:
            Number of episodes written by this call.
        """
        if policy_version is not None:
            self._current_version = int(policy_version)
        starting = self._asm.resetting.copy()
        finished = self._asm.step(
            np.asarray(actions).reshape(-1), self._hwc(obs), rewards, terminated, truncated, info
        )
        for raw in finished:
            version = int(self._version[raw.env])
            policy = f"{self.policy_id}@{version}"
            self.writer.add_policy(policy, kind="training", version=version)
            self.writer.write(
                make_episode(
                    raw.frames,
                    raw.actions,
                    raw.rewards,
                    game=self.writer.game,
                    level_seed=raw.level_seed,
                    terminated=raw.terminated,
                    truncated=raw.truncated,
                    policy_id=policy,
                )
            )
        # Environments whose reset step this was begin a new episode under the current version;
        # those that had not started yet keep the version of their first real step.
        self._version[starting] = self._current_version
        self.episodes_written += len(finished)
        return len(finished)

    def add_rollout(
        self,
        obs: npt.NDArray[Any],
        actions: npt.NDArray[Any],
        rewards: npt.NDArray[Any],
        terminated: npt.NDArray[Any],
        truncated: npt.NDArray[Any],
        infos: list[Mapping[str, Any]],
        *,
        policy_version: int,
    ) -> int:
        """Record a whole rollout: ``obs[t + 1]`` etc. are what step ``t`` returned.

        Args:
            obs: ``(T + 1, N, ...)``; ``obs[0]`` must be the observation the rollout started from
                (already recorded by :meth:`start` or the previous rollout).
            actions, rewards, terminated, truncated: ``(T, N)``.
            infos: ``T`` info dicts as returned by ``env.step``.
            policy_version: Version of the policy that collected the rollout.
        """
        written = 0
        for t in range(len(actions)):
            written += self.step(
                actions[t],
                obs[t + 1],
                rewards[t],
                terminated[t],
                truncated[t],
                infos[t],
                policy_version=policy_version,
            )
        return written

    def close(self, *, finalize: bool = True) -> None:
        """Commit and (by default) finish the store; unfinished episodes are discarded."""
        self.writer.close(finalize=finalize)

    def __enter__(self) -> RolloutRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(finalize=exc_info[0] is None)
