/* aqi-service embeddable widget. Usage:
     <div data-aqi-station="LF01"></div>  or  <div data-aqi-city></div>  (optional data-lang="en")
     <script src="https://HOST/widget.js" async></script>
   No dependencies, no eval, no inline handlers or styles; renders in a Shadow DOM with a
   constructable stylesheet, so it works under a CSP that allows this script's origin (and
   connect-src to it). Refreshes when the next hour is expected, not on a blind timer. */
(function () {
  "use strict";
  var D = document, W = window;
  var GRACE = 600000, JITTER = [15000, 120000], LATE = 120000, ERR = 30000, MAX = 1800000;
  var T = {
    zh: {region: "空气质量：", primary: "首要污染物：", none: "无", delayed: "数据延迟",
      missing: "站点未报送", maint: "设备维护", unknown: "未知站点", error: "数据暂不可用",
      loading: "加载中…", na: "无有效指数", pre: "北京时间 ", post: " 止的小时值", city: "全市"},
    en: {region: "Air quality: ", primary: "Primary pollutant: ", none: "none",
      delayed: "Data delayed", missing: "station not reporting", maint: "Maintenance",
      unknown: "Unknown station", error: "Data unavailable", loading: "Loading…",
      na: "No valid index", pre: "Hour ending ", post: ", Beijing time", city: "City"}
  };
  var LABELS = {so2: "SO₂", no2: "NO₂", co: "CO", o3: "O₃", pm10: "PM10", pm2_5: "PM2.5"};
  var CSS = ":host{all:initial;display:block;max-width:320px}" +
    ".aqiw{box-sizing:border-box;font:14px/1.4 system-ui,-apple-system,'PingFang SC'," +
    "'Noto Sans CJK SC','Microsoft YaHei',sans-serif;color:#1a1a1a;background:#fff;" +
    "padding:10px 12px;border:1px solid #ccc;border-radius:8px;text-align:left}" +
    ".aqiw p{margin:0 0 6px}.aqiw-place{font-weight:700;font-size:15px}" +
    ".aqiw-place a{color:#0b57d0}" +
    ".aqiw-badge{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 8px;" +
    "padding:6px 10px;border-radius:6px;background:#e6e6e6;color:#000}" +
    ".aqiw-label{font-size:12px;font-weight:700}" +
    ".aqiw-aqi{font-size:34px;font-weight:700;line-height:1.1}" +
    ".aqiw-cat{font-size:16px;font-weight:700}" +
    ".aqiw-primary,.aqiw-time{font-size:13px;color:#333}" +
    ".aqiw-note{display:inline-block;padding:2px 8px;border-radius:4px;font-weight:700;" +
    "background:#fff3cd;color:#5c3c00;border:1px solid #b07d00}" +
    ".aqiw-note[hidden]{display:none}.aqiw-stale{border:2px dashed #b07d00}" +
    ".aqiw-lvl-1 .aqiw-badge{background:#00e400}.aqiw-lvl-2 .aqiw-badge{background:#ff0}" +
    ".aqiw-lvl-3 .aqiw-badge{background:#ff7e00}.aqiw-lvl-4 .aqiw-badge{background:#f00}" +
    ".aqiw-lvl-5 .aqiw-badge{background:#99004c;color:#fff}" +
    ".aqiw-lvl-6 .aqiw-badge{background:#7e0023;color:#fff}";

  function findScript() {
    var all = D.getElementsByTagName("script");
    for (var i = all.length - 1; i >= 0; i--) {
      if (/\/widget\.js([?#]|$)/.test(all[i].src)) return all[i];
    }
    return null;
  }

  var script = D.currentScript || findScript();
  if (!script || !script.src) return;
  var base = new URL(".", script.src);
  var api = new URL("api/v1/now", base).href;
  var registry = W.__aqiWidgets = W.__aqiWidgets || {};
  if (registry[api]) { registry[api].scan(); return; }

  var widgets = [], last = null, timer = 0, due = 0, errors = 0, lateTries = 0, started = false;
  var sheet = null;

  function el(tag, cls, parent) {
    var e = D.createElement(tag);
    if (cls) e.className = cls;
    if (parent) parent.appendChild(e);
    return e;
  }

  function text(node, value) {
    if (node.textContent !== value) node.textContent = value;
  }

  function style(root, shadow) {
    try {
      if (!shadow) throw new Error("no shadow root");
      if (!sheet) { sheet = new CSSStyleSheet(); sheet.replaceSync(CSS); }
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      el("style", "", root).textContent = CSS;
    }
  }

  function langOf(host) {
    var given = (host.getAttribute("data-lang") || "").toLowerCase();
    if (given === "en" || given === "zh") return given;
    return /^en/i.test(D.documentElement.lang || "") ? "en" : "zh";
  }

  function make(host) {
    var code = host.getAttribute("data-aqi-station");
    var lang = langOf(host);
    var shadow = !!host.attachShadow;
    var root = shadow ? host.attachShadow({mode: "open"}) : host;
    style(root, shadow);
    var w = {host: host, code: code, t: T[lang], lang: lang};
    w.box = el("div", "aqiw", root);
    w.box.setAttribute("role", "region");
    w.box.setAttribute("aria-label", w.t.region + (code || w.t.city));
    w.place = el("p", "aqiw-place", w.box);
    w.link = el("a", "", w.place);
    w.link.target = "_blank";
    w.link.rel = "noopener";
    var page = code ? new URL("stations/" + encodeURIComponent(code), base) : new URL(base);
    if (lang === "en") page.searchParams.set("lang", "en");
    w.link.href = page.href;
    w.link.textContent = code || w.t.city;
    w.live = el("div", "aqiw-live", w.box);
    w.live.setAttribute("aria-live", "polite");
    w.badge = el("p", "aqiw-badge", w.live);
    el("span", "aqiw-label", w.badge).textContent = "AQI";
    w.aqi = el("span", "aqiw-aqi", w.badge);
    w.cat = el("span", "aqiw-cat", w.badge);
    w.primary = el("p", "aqiw-primary", w.live);
    w.time = el("time", "", el("p", "aqiw-time", w.live));
    w.note = el("p", "aqiw-note", w.live);
    w.note.hidden = true;
    text(w.cat, w.t.loading);
    return w;
  }

  function scan() {
    var hosts = D.querySelectorAll("[data-aqi-station],[data-aqi-city]");
    for (var i = 0; i < hosts.length; i++) {
      if (hosts[i].__aqiw) continue;
      hosts[i].__aqiw = true;
      var w = make(hosts[i]);
      widgets.push(w);
      if (last) render(w, last);
    }
    if (!started && widgets.length) { started = true; load(); }
  }

  function placeOf(w, data) {
    if (!w.code) return data.city;
    for (var i = 0; i < data.stations.length; i++) {
      if (data.stations[i].station_code === w.code) return data.stations[i];
    }
    return null;
  }

  function staleOf(w, p, data) {
    if (Date.now() > Date.parse(data.next_expected_at) + GRACE) return true;
    if (w.code) return p.status === "late" || p.status === "missing";
    return !p.time_point || Date.parse(p.time_point) < Date.parse(data.expected_hour);
  }

  function render(w, data) {
    var t = w.t, p = placeOf(w, data);
    if (!p) {
      w.box.className = "aqiw aqiw-lvl-na";
      text(w.aqi, "");
      text(w.cat, t.unknown);
      return;
    }
    var en = w.lang === "en", stale = staleOf(w, p, data), has = p.aqi != null;
    var name = en ? p.name_en : p.name_zh;
    w.box.className = "aqiw aqiw-lvl-" + (p.level || "na") + (stale ? " aqiw-stale" : "");
    w.box.setAttribute("aria-label", t.region + name);
    text(w.link, name);
    text(w.aqi, has ? String(p.aqi) : "NA");
    text(w.cat, (en ? p.category_en : p.category) || t.na);
    var prim = (p.primary_pollutants || []).map(function (k) { return LABELS[k] || k; });
    text(w.primary, t.primary + (prim.length ? prim.join(", ") : has ? t.none : "—"));
    var tp = p.time_point || "";
    w.time.setAttribute("datetime", tp);
    text(w.time, tp ? t.pre + tp.slice(5, 10) + " " + tp.slice(11, 16) + t.post : "");
    var note = stale ? t.delayed + (p.status === "missing" ? " · " + t.missing : "")
      : p.status === "maintenance" ? t.maint : "";
    text(w.note, note);
    w.note.hidden = !note;
    w.host.setAttribute("data-aqi-state", stale ? "stale" : "ok");
  }

  function fail() {
    for (var i = 0; i < widgets.length; i++) {
      if (last) { render(widgets[i], last); continue; }
      text(widgets[i].cat, widgets[i].t.error);
      widgets[i].host.setAttribute("data-aqi-state", "error");
    }
  }

  function jitter() {
    return JITTER[0] + Math.random() * (JITTER[1] - JITTER[0]);
  }

  function later(ms) {
    clearTimeout(timer);
    due = Date.now() + ms;
    timer = setTimeout(load, ms);
  }

  function load() {
    clearTimeout(timer);
    W.fetch(api, {cache: "no-cache", credentials: "omit", mode: "cors"})
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (data) {
        last = data;
        errors = 0;
        for (var i = 0; i < widgets.length; i++) render(widgets[i], data);
        var wait = Date.parse(data.next_expected_at) - Date.now();
        if (wait > 0) { lateTries = 0; later(wait + jitter()); }
        else later(Math.min(LATE * Math.pow(2, lateTries++), MAX) + jitter());
      })
      .catch(function () {
        fail();
        later(Math.min(ERR * Math.pow(2, errors++), MAX) + jitter());
      });
  }

  D.addEventListener("visibilitychange", function () {
    if (!D.hidden && due && Date.now() >= due) load();
  });
  registry[api] = {scan: scan};

  scan();
  if (D.readyState === "loading") D.addEventListener("DOMContentLoaded", scan);
})();
