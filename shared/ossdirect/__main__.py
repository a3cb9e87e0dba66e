"""``python -m ossdirect <command>``: the same commands as the ``ossdirect`` script (see ``--help``),
including ``reconcile [--fix]``, which runs with the functions' configuration."""

import sys

from .client.cli import main

if __name__ == "__main__":
    sys.exit(main())
