"""The LB's admin HTTP port: Prometheus metrics, health, and a live status page.

``metrics.py`` names every metric and feeds it from the registry's and
balancer's callbacks (nothing extra on the pick path); ``timing.py`` times
GetBackend as a server interceptor; ``fleet.py`` samples the fleet once a
second for the page; ``app.py`` serves it all on aiohttp, on top of the shared
:mod:`lookaside.admin_http`. The page's assets live in ``static/``.
"""
