"""Prometheus metrics of the daemon, on a registry of its own (served at ``[web] listen``/metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

POLLS = Counter("crisis_monitor_polls", "Feed polls, by outcome", ["status"], registry=REGISTRY)
ITEMS = Counter("crisis_monitor_items", "New items stored", registry=REGISTRY)
MATCHES = Counter("crisis_monitor_matches", "Rule matches stored, by rule", ["rule"], registry=REGISTRY)
ALERTS = Counter("crisis_monitor_alerts", "Alerts created", registry=REGISTRY)
DELIVERIES = Counter("crisis_monitor_deliveries", "Delivery attempts, by channel and outcome",
                     ["channel", "status"], registry=REGISTRY)
FETCH_SECONDS = Histogram("crisis_monitor_fetch_seconds", "Time to fetch a feed (connect to last byte)",
                          buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 60), registry=REGISTRY)
OUTBOX = Gauge("crisis_monitor_outbox_pending", "Deliveries waiting to be sent", registry=REGISTRY)
RELOAD_ERRORS = Counter("crisis_monitor_rule_reload_errors", "Rule or config reloads refused as invalid",
                        registry=REGISTRY)
FEEDS = Gauge("crisis_monitor_feeds", "Configured feeds, by last status", ["status"], registry=REGISTRY)
PRUNED = Counter("crisis_monitor_pruned_rows", "Rows retention deleted, by table", ["table"], registry=REGISTRY)
WORKER_RESTARTS = Counter("crisis_monitor_worker_restarts", "Worker pools replaced because a task overran its "
                          "deadline", registry=REGISTRY)
