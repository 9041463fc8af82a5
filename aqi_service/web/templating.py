"""Server-rendered HTML: Jinja2 through aiohttp-jinja2, zh-CN by default, English on request.

Templates live in ``web/templates`` and every page extends ``base.html``. A template says
each text in both languages with ``tr("中文", "English")``; the language of a request is
``?lang=`` if given, otherwise the better of zh and en in ``Accept-Language``, otherwise
zh. Autoescaping is on for every template.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from aqi_service.aqi.schemes import SHANGHAI
from aqi_service.web import conditional, ranges

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"


def _accept_language(header: str) -> str | None:
    """The best of zh/en in an ``Accept-Language`` header (None when it names neither)."""
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(header.split(",")):
        tag, _, rest = part.strip().partition(";")
        tag = tag.strip().lower()
        q = 1.0
        for p in rest.split(";"):
            key, _, value = p.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        lang = tag.split("-")[0]
        if lang in LANGS and q > 0:
            rank = (q, -position, lang)
            if best is None or rank[:2] > best[:2]:
                best = rank
    return best[2] if best else None


def lang_for(request: web.Request) -> str:
    """The page language of ``request``: ``?lang=``, then ``Accept-Language``, then zh."""
    asked = request.query.get("lang", "").lower()
    if asked in LANGS:
        return asked
    return _accept_language(request.headers.get("Accept-Language", "")) or DEFAULT_LANG


def shanghai(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A timestamp as Asia/Shanghai wall time ('' for None)."""
    if value is None:
        return ""
    return value.astimezone(SHANGHAI).strftime(fmt)


@jinja2.pass_context
def _tr(context: Mapping[str, Any], zh: str, en: str) -> str:
    return en if context.get("lang") == "en" else zh


@jinja2.pass_context
def _url(context: Mapping[str, Any], path: str, **query: Any) -> str:
    """``path`` with ``query`` and the page's language kept when it was asked for."""
    from urllib.parse import urlencode

    request: web.Request | None = context.get("request")
    items = {k: v for k, v in query.items() if v is not None}
    if request is not None and "lang" in request.query and "lang" not in items:
        items["lang"] = context.get("lang")
    return path + ("?" + urlencode(items) if items else "")


@jinja2.pass_context
def _static(context: Mapping[str, Any], filename: str) -> str:
    """The versioned URL of a file in ``web/static`` (cache-busting query)."""
    request: web.Request = context["request"]
    return str(request.app.router["static"].url_for(filename=filename))


def base_context(request: web.Request) -> dict[str, Any]:
    """What every template sees besides its own context: the request and its language."""
    lang = lang_for(request)
    return {"lang": lang, "html_lang": "zh-CN" if lang == "zh" else "en", "request": request}


def content_language(request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
    """Say the page's language, and that it depends on ``Accept-Language``."""
    resp.headers["Content-Language"] = "zh-CN" if lang_for(request) == "zh" else "en"
    vary = resp.headers.get("Vary")
    if not vary or "Accept-Language" not in vary:
        resp.headers["Vary"] = f"{vary}, Accept-Language" if vary else "Accept-Language"
    return resp


PAGE_CSP = ("default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
"""The pages use no script at all; only the widget's iframe may be framed elsewhere."""
ERROR_MAX_AGE = 60
"""Seconds an error page may be cached."""


def html_response(request: web.Request, body: str, max_age: int,
                  status: int = 200) -> web.Response:
    """A page: strong ETag (304 on a match), Cache-Control, gzip when asked, language
    headers, and a Content-Security-Policy that allows no script."""
    data = body.encode()
    etag = conditional.etag_of(data)
    if status == 200 and conditional.matches(request, etag):
        resp = web.Response(status=304)
    else:
        resp = web.Response(body=data, status=status, content_type="text/html",
                            charset="utf-8")
        if len(data) > 1024 and conditional.accepts_gzip(request):
            resp.enable_compression(web.ContentCoding.gzip)
    if status == 200:
        resp.headers["ETag"] = etag
        resp.headers["Cache-Control"] = f"public, max-age={max(max_age, 0)}"
    else:
        resp.headers["Cache-Control"] = f"public, max-age={ERROR_MAX_AGE}"
    resp.headers["Vary"] = "Accept-Encoding, Accept-Language"
    resp.headers["Content-Security-Policy"] = PAGE_CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return content_language(request, resp)


def render_string(name: str, request: web.Request, context: Mapping[str, Any]) -> str:
    """``name`` rendered with ``context`` and the base context.

    (Rather than aiohttp-jinja2's context processors, whose middleware would run on every
    request, the JSON API and the metrics included.)
    """
    return aiohttp_jinja2.render_string(name, request, {**base_context(request), **context})


def render_template(name: str, request: web.Request, context: Mapping[str, Any], *,
                    status: int = 200) -> web.Response:
    """An HTML response of ``name`` with its language headers."""
    resp = aiohttp_jinja2.render_template(name, request, {**base_context(request), **context},
                                          status=status)
    return content_language(request, resp)


def setup_templates(app: web.Application) -> jinja2.Environment:
    """Install the template environment, its globals and the ``/static/`` files."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("aqi_service.web", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(tr=_tr, url=_url, static=_static)
    env.filters["shanghai"] = shanghai
    ranges.add_static(app, "/static/", _static_dir(), "static")   # If-Range by RFC 9110
    return env


def _static_dir() -> Any:
    from pathlib import Path

    return Path(__file__).parent / "static"
