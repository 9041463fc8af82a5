"""What the bureau's Prometheus watches: metrics on a per-app registry, and the cached
database statistics behind the station gauges and the public status page.

``metrics`` holds the instruments and the event hooks (collector, scheduler, HTTP);
``stats`` reads the monitoring figures from the database when the ``/now`` snapshot
changes; ``scrape`` turns the snapshot and those figures into gauges at scrape time.
The web side (``/metrics``, the middleware, ``/status``) is in ``aqi_service.web``.
"""
