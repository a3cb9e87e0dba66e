"""``python -m ossdirect <command>``: maintenance commands run with the functions' configuration.

    python -m ossdirect reconcile [--fix] [--page-size N]
"""

import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    if argv[0] == "reconcile":
        from .reconcile import main as reconcile_main

        return reconcile_main(argv[1:])
    print(f"unknown command {argv[0]!r}\n\n{__doc__.strip()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
