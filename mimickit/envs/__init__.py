"""Environments: one module per environment, each a character in a simulator with its observations and rewards.

The interface is :class:`mimickit.envs.base_env.BaseEnv`; :func:`mimickit.envs.env_builder.build_env`
builds one by the ``env_name`` of its YAML. Shared pieces: per-step character state
(:mod:`~mimickit.envs.char_state`), observation terms (:mod:`~mimickit.envs.char_obs`,
:mod:`~mimickit.envs.amp_obs`), rewards (:mod:`~mimickit.envs.deepmimic_rewards`) and tasks
(:mod:`~mimickit.envs.tasks`).
"""
