"""Command-line tools around the mimickit package (importers, converters).

The tools may use newer Python than the package (3.11); their logic lives in
subpackages such as :mod:`tools.motion_import` so that tests can import it.
"""
