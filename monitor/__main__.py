"""``python -m monitor`` is the same as the ``crisis-monitor`` console script."""

from monitor.cli import main

# Guarded: parse worker processes (forkserver) import the main module again.
if __name__ == "__main__":
    raise SystemExit(main())
