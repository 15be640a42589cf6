"""Gait generation for robots described by MJCF (see README.md beside this file): placo
walks for bipeds, kinematic trot/pace/turn gaits for the quadruped.

``generate.py`` is the command line; ``placo_walk`` needs the optional ``gait`` extra,
the other modules (``robot``, ``quality``, ``clip``, ``mjcf_to_urdf``, ``leg_ik``,
``quadruped_gait``) do not.
"""
