"""Helpers shared by every layer: quaternions, configs, errors, registries, arguments, files, video."""
