"""``python -m monitor`` is the same as the ``crisis-monitor`` console script."""

from monitor.cli import main

raise SystemExit(main())
