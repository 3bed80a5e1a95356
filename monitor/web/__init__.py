"""The web side of the daemon on ``[web] listen``: ``/healthz``, ``/metrics``, the dashboard and ``/api/``.

``server.WebServer`` runs uvicorn in the daemon's event loop; ``app.build_app`` is the
Starlette app (pages in ``pages``, the JSON API in ``api``, guards in ``security``,
template helpers in ``present``); templates and static files are package data.
"""
