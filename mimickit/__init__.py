"""MimicKit: physically simulated characters that learn motion skills by reinforcement learning.

Layers (docs/architecture.md): :mod:`mimickit.engines` (simulators), :mod:`mimickit.envs`
(environments), :mod:`mimickit.learning` (agents), :mod:`mimickit.anim` (characters and
motions), :mod:`mimickit.util`; :mod:`mimickit.run` builds them and runs a mode.
"""
