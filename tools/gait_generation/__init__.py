"""placo-based gait generation for bipeds described by MJCF (see README.md beside this file).

``generate.py`` is the command line; ``placo_walk`` needs the optional ``gait`` extra,
the other modules (``robot``, ``quality``, ``clip``, ``mjcf_to_urdf``) do not.
"""
