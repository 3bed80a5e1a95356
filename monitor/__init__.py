"""crisis-monitor: a self-hosted crisis-monitoring alert daemon.

The package is organised so that deciding is kept apart from doing: ``text``
and ``rules`` are pure (no network, no database, no clock), and the modules
that talk to the outside world call them.
"""

__version__ = "0.1.0"
