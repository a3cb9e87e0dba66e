"""ossdirect: sign OSS PostObject forms and verify OSS upload callbacks.

Kept import-light on purpose: the Function Compute handlers import only the
submodules they need, so cold start stays small.
"""

__version__ = "0.1.0"
