"""The service's public origin, for every absolute link it writes.

Links in the Atom feed, the downloads page (which is cached and shared by every visitor)
and the CSVW metadata are built from ``[http] public_url``, never from the request's
``Host`` header: a forged ``Host`` would otherwise put an attacker's address into a feed
that readers follow, or into a page cache that serves everybody. Without ``public_url``
the origin is the address this server listens on (the address the connection reached,
when it listens on a wildcard address or an ephemeral port), which is right for the
embedded demo and wrong behind a proxy — set it there.
"""

from __future__ import annotations

from aiohttp import web

from aqi_service.web import keys

WILDCARDS = ("", "0.0.0.0", "::")


def public_origin(request: web.BaseRequest) -> str:
    """``scheme://host[:port][/path]`` without a trailing slash."""
    http = request.app[keys.CONFIG].http
    if http.public_url:
        return http.public_url.rstrip("/")
    host, port = http.host, http.port
    if host in WILDCARDS or port == 0:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        if sockname:
            host = sockname[0] if host in WILDCARDS else host
            port = sockname[1] if port == 0 else port
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}" + ("" if port == 80 else f":{port}")
