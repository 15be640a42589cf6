"""Learning: one module per agent, its model, and the pieces they share.

:mod:`~mimickit.learning.runner` holds the training loop over the algorithm interface
(:class:`mimickit.learning.base_agent.BaseAgent`); :func:`mimickit.learning.agent_builder.build_agent`
builds an agent by the ``agent_name`` of its YAML. Shared pieces: networks, normalisers, buffers,
checkpoints, logging, test episodes and policy export.
"""
