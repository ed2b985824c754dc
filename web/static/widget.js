/*! newsrec widget: replaces a page's "ALSO READ" links with related stories.
 *
 * Install: <script src="https://HOST/widget.js" async></script>
 * Options (data- attributes on the script tag):
 *   data-article-id  the article's id in the index (else: the page's canonical URL, else its text)
 *   data-k           how many stories (default: one per ALSO READ block, at least 3 in a container)
 *   data-selector    CSS selector of the blocks to replace (default: text starting "ALSO READ" etc.)
 *   data-container   CSS selector of a container to render the list into (default: [data-newsrec])
 *   data-api         the service's base URL (default: where this script came from)
 *   data-timeout     milliseconds before giving up (default 3000)
 *   data-label       the label shown before each story (default: the label the page's own block
 *                    carried, e.g. "Lesen Sie auch", else the page's language's, else "ALSO READ")
 *   data-heading     the heading of a container list (default: "Related stories" in the page's language)
 *   data-fallback-image  the image of a story that has none (default: the server's NEWSREC_FALLBACK_IMAGE)
 * Style: the CSS variables --newsrec-* (see the README). Nothing from the answer is inserted as
 * HTML; any failure leaves the page as it was.
 */
(function () {
  "use strict";
  var script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  if (!script || script.getAttribute("data-newsrec-started")) return;
  script.setAttribute("data-newsrec-started", "1");

  var opt = function (name, fallback) {
    var v = script.getAttribute("data-" + name);
    return v === null || v === "" ? fallback : v;
  };
  var api = opt("api", new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var timeout = parseInt(opt("timeout", "3000"), 10) || 3000;
  // The page's language (<html lang="de-AT"> -> "de"), for labels and by-text requests.
  var pageLang = ((document.documentElement.getAttribute("lang") || "").toLowerCase().split(/[-_]/)[0]) || "";
  // Words a site puts before a link to another of its stories, in the languages the service covers.
  // JavaScript's \b only knows ASCII letters, so a label ends at a separator, a space or the end.
  var LABELS = [
    "also read", "read also", "also see", "see also", "read more", "related(?: (?:stories|articles|news|posts|coverage))?",
    "recommended(?: for you| reading)?", "you (?:may|might) also like", "don'?t miss", "more on this",
    "lesen sie auch", "lesen sie mehr", "auch lesen", "mehr zum thema", "das könnte sie (?:auch )?interessieren",
    "lee también", "lea también", "lea más", "lee más", "ver también", "vea también", "te puede interesar",
    "noticias relacionadas", "contenido relacionado",
    "à lire aussi", "a lire aussi", "lire aussi", "lire également", "voir aussi", "sur le même sujet",
    "leia também", "leia mais", "veja também", "saiba mais",
    "leggi anche", "leggi pure", "potrebbe interessarti",
    "lees ook", "lees meer", "czytaj (?:też|także|również|więcej)", "zobacz (?:też|także|również)",
    "читайте также", "читайте ещё", "читайте еще", "смотрите также", "см\\. также",
    "baca juga", "ayrıca okuyun", "ilgili haberler", "xem thêm", "đọc thêm",
    "اقرأ أيضا", "اقرأ أيضاً", "اقرأ ايضا", "यह भी पढ़ें", "ये भी पढ़ें",
    "関連記事", "あわせて読みたい", "相关阅读", "延伸阅读", "相關閱讀", "延伸閱讀", "관련\\s*기사"
  ];
  var PATTERN = new RegExp("^[^\\p{L}\\p{N}]*(" + LABELS.join("|").replace(/ /g, "\\s+") +
    ")(?=$|[\\s:|\\-\\u2013\\u2014»>.…!\\uff1a\\u3011])", "iu");
  // The label in the page's language when the page's own block gives none.
  var LABEL_BY_LANG = {
    en: "ALSO READ", de: "Lesen Sie auch", es: "Lee también", fr: "À lire aussi", pt: "Leia também",
    it: "Leggi anche", nl: "Lees ook", pl: "Czytaj także", ru: "Читайте также", uk: "Читайте також",
    tr: "Ayrıca okuyun", id: "Baca juga", ms: "Baca juga", vi: "Xem thêm", ar: "اقرأ أيضا",
    hi: "यह भी पढ़ें", ja: "関連記事", zh: "相关阅读", ko: "관련 기사", sv: "Läs också", da: "Læs også",
    no: "Les også", nb: "Les også", fi: "Lue myös", cs: "Čtěte také", ro: "Citește și", el: "Διαβάστε επίσης"
  };
  var HEADING_BY_LANG = {
    en: "Related stories", de: "Mehr zum Thema", es: "Noticias relacionadas", fr: "Sur le même sujet",
    pt: "Notícias relacionadas", it: "Articoli correlati", nl: "Gerelateerde artikelen", pl: "Powiązane artykuły",
    ru: "Похожие новости", tr: "İlgili haberler", id: "Berita terkait", ar: "أخبار ذات صلة", ja: "関連記事",
    zh: "相关新闻"
  };
  var fixedLabel = opt("label", null);
  var label = fixedLabel || LABEL_BY_LANG[pageLang] || "ALSO READ";

  // The label a block itself begins with ("Lesen Sie auch: ..." -> "Lesen Sie auch"), if any.
  function ownLabel(el) {
    var m = PATTERN.exec((el.textContent || "").replace(/\s+/g, " ").trim());
    return m ? m[1] : null;
  }
  var BLOCKS = "p, li, div, aside, section, h2, h3, h4, h5, blockquote, span, strong, figure";

  var STYLE =
    ":host{all:initial;display:block;font-family:var(--newsrec-font,system-ui,-apple-system,Segoe UI,Roboto,sans-serif);" +
    "color:var(--newsrec-color,#1a1a1a);margin:1em 0}" +
    ".nr{background:var(--newsrec-bg,transparent);border-left:3px solid var(--newsrec-border,#c8102e);padding:.25em .9em;" +
    "border-radius:var(--newsrec-radius,0)}" +
    ".nr-h{font-size:.75em;font-weight:700;letter-spacing:.06em;text-transform:uppercase;color:var(--newsrec-muted,#666);margin:.2em 0 .4em}" +
    "ul{list-style:none;margin:0;padding:0}li{display:flex;gap:.7em;align-items:flex-start;margin:.45em 0;min-height:48px}" +
    "a{color:var(--newsrec-link,#0b4f9c);font-weight:600;text-decoration:none;line-height:1.3}a:hover{text-decoration:underline}" +
    "img{width:72px;height:48px;object-fit:cover;border-radius:3px;flex:none}" +
    ".meta{display:block;font-size:.8em;font-weight:400;color:var(--newsrec-muted,#666);margin-top:.15em}";

  function isRelatedBlock(el) {
    var text = (el.textContent || "").replace(/\s+/g, " ").trim();
    return text.length > 0 && text.length < 400 && PATTERN.test(text);
  }

  function findBlocks() {
    var sel = opt("selector", null);
    var found = [];
    try {
      found = sel ? Array.prototype.slice.call(document.querySelectorAll(sel)) :
        Array.prototype.filter.call(document.querySelectorAll(BLOCKS), isRelatedBlock);
    } catch (e) { return []; }
    // Keep the outermost matching block of each nest (the whole "ALSO READ: <a>..</a>" paragraph).
    return found.filter(function (el) {
      for (var p = el.parentElement; p; p = p.parentElement) {
        if (found.indexOf(p) >= 0) return false;
      }
      return !el.closest("[data-newsrec-widget]");
    });
  }

  // The page's publication time as news pages state it (article:published_time, schema.org's
  // datePublished, an article's <time datetime>): a page not yet indexed is judged by the time apart too.
  // Only a date the API reads is sent; anything else leaves the page undated.
  function pagePublished() {
    var el = document.querySelector('meta[property="article:published_time"],meta[name="article:published_time"],' +
      '[itemprop="datePublished"],article time[datetime]');
    var v = el ? (el.getAttribute("content") || el.getAttribute("datetime") || "").trim() : "";
    var iso = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;
    return iso.test(v) && !isNaN(Date.parse(v.replace(" ", "T"))) ? v : undefined;
  }

  function articleText(blocks) {
    var root = document.querySelector("article") || document.querySelector("main") || document.body;
    var parts = [];
    root.querySelectorAll("p, h2, h3, li").forEach(function (el) {
      if (blocks.some(function (b) { return b === el || b.contains(el) || el.contains(b); })) return;
      var t = (el.textContent || "").trim();
      if (t) parts.push(t);
    });
    return parts.join("\n\n").slice(0, 20000);
  }

  function request(url, body) {
    var ctrl = typeof AbortController !== "undefined" ? new AbortController() : null;
    var timer = setTimeout(function () { if (ctrl) ctrl.abort(); }, timeout);
    var init = { method: body ? "POST" : "GET", mode: "cors", credentials: "omit", signal: ctrl ? ctrl.signal : undefined };
    if (body) {
      init.headers = { "Content-Type": "application/json" };
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (r) {
      clearTimeout(timer);
      if (r.status === 404) return null;
      if (!r.ok) throw new Error("newsrec: HTTP " + r.status);
      return r.json();
    }, function (e) { clearTimeout(timer); throw e; });
  }

  function safeUrl(u) {
    if (typeof u !== "string" || !u.trim()) return null;
    try {
      var url = new URL(u, location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) { return null; }
  }

  function beacon(fromId, item, position) {
    try {
      var data = JSON.stringify({ from: fromId || "", to: item.id, position: position, ticket: item.ticket });
      var blob = new Blob([data], { type: "text/plain;charset=UTF-8" });
      if (navigator.sendBeacon) navigator.sendBeacon(api + "/api/click", blob);
    } catch (e) { /* counting a click must never break the link */ }
  }

  // One "seen" beacon per page view, when half a list is on screen (click-through's denominator).
  function watchSeen(hosts, fromId, items) {
    var sent = false;
    var send = function () {
      if (sent) return;
      sent = true;
      try {
        var data = JSON.stringify({ from: fromId || "", items: items.map(function (i) { return i.id; }),
          tickets: items.map(function (i) { return i.ticket; }) });
        if (navigator.sendBeacon) navigator.sendBeacon(api + "/api/view", new Blob([data], { type: "text/plain;charset=UTF-8" }));
      } catch (e) { /* counting must never break the page */ }
    };
    if (typeof IntersectionObserver === "undefined") { send(); return; }
    var io = new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; })) { send(); io.disconnect(); }
    }, { threshold: 0.5 });
    hosts.forEach(function (h) { io.observe(h); });
  }

  // A constructed stylesheet is not inline style, so a host page's strict CSP (style-src) allows it.
  var sheet = null;
  function applyStyle(root) {
    try {
      if (root !== undefined && "adoptedStyleSheets" in root && typeof CSSStyleSheet === "function") {
        if (!sheet) { sheet = new CSSStyleSheet(); sheet.replaceSync(STYLE); }
        root.adoptedStyleSheets = [sheet];
        return;
      }
    } catch (e) { /* fall back to a style element */ }
    var style = document.createElement("style");
    style.textContent = STYLE;
    root.appendChild(style);
  }

  function render(items, heading, fromId, offset, fallback) {
    var host = document.createElement("div");
    host.setAttribute("data-newsrec-widget", "");
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    applyStyle(root);
    var box = document.createElement("div");
    box.className = "nr";
    box.setAttribute("part", "box");
    var h = document.createElement("div");
    h.className = "nr-h";
    h.textContent = heading;
    box.appendChild(h);
    var ul = document.createElement("ul");
    items.forEach(function (item, i) {
      var href = safeUrl(item.url || "") || (api + "/article/" + encodeURIComponent(item.id));
      var li = document.createElement("li");
      var img = safeUrl(item.image || "") || fallback;
      if (img) {
        // Sized before it loads (the row keeps its height), fetched when near, and the site's fallback
        // (else nothing) when it fails.
        var im = document.createElement("img");
        im.width = 72; im.height = 48; im.alt = ""; im.loading = "lazy"; im.decoding = "async";
        im.onerror = function () { if (fallback && im.src !== fallback) im.src = fallback; else im.remove(); };
        im.src = img;
        li.appendChild(im);
      }
      var a = document.createElement("a");
      a.href = href;
      a.textContent = item.title || item.id;
      a.setAttribute("data-newsrec-id", item.id);
      a.addEventListener("click", function () { beacon(fromId, item, offset + i + 1); });
      var meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = [item.source, item.published].filter(Boolean).join(" · ");
      a.appendChild(meta);
      li.appendChild(a);
      ul.appendChild(li);
    });
    box.appendChild(ul);
    root.appendChild(box);
    return host;
  }

  // Whether any of an element's box is on screen now.
  function onScreen(el) {
    var r = el.getBoundingClientRect();
    return r.bottom > 0 && r.top < innerHeight && r.height > 0;
  }

  // Put `host` where `old` was with no layout shift: a block on screen keeps its height (the list scrolls
  // inside it) until it is off screen, where growing moves nothing a reader sees (the browser's scroll
  // anchoring holds what is above).
  function swap(old, host, inside) {
    var keep = onScreen(old) ? old.getBoundingClientRect().height : 0;
    if (keep) {
      host.style.height = keep + "px";
      host.style.overflowY = "auto";
      var cs = getComputedStyle(old);
      if (!inside) host.style.margin = cs.marginTop + " 0 " + cs.marginBottom;
      if (typeof IntersectionObserver !== "undefined") {
        var io = new IntersectionObserver(function (es) {
          if (!es[0].isIntersecting) { host.style.height = host.style.overflowY = ""; io.disconnect(); }
        });
        io.observe(host);
      }
    }
    if (inside) { old.textContent = ""; old.appendChild(host); } else old.parentNode.insertBefore(host, old);
  }

  function place(data, blocks, container) {
    var items = (data && data.items) || [];
    if (!items.length) return false;
    var fromId = data.query && data.query.id;
    var fallback = safeUrl(opt("fallback-image", data.fallback_image || ""));
    if (container) {
      var host = render(items, opt("heading", HEADING_BY_LANG[pageLang] || "Related stories"), fromId, 0, fallback);
      swap(container, host, true);
      blocks.forEach(function (b) { b.hidden = true; b.setAttribute("data-newsrec-replaced", ""); });
      watchSeen([host], fromId, items);
      return true;
    }
    // One story in the place of each ALSO READ block; extra stories go after the last one.
    var per = Math.max(1, Math.floor(items.length / blocks.length));
    var hosts = [];
    blocks.forEach(function (b, i) {
      var chunk = i === blocks.length - 1 ? items.slice(i * per) : items.slice(i * per, (i + 1) * per);
      if (!chunk.length) return;
      var host = render(chunk, fixedLabel || ownLabel(b) || label, fromId, i * per, fallback);
      swap(b, host);
      hosts.push(host);
      b.hidden = true;
      b.setAttribute("data-newsrec-replaced", "");
    });
    watchSeen(hosts, fromId, items);
    return true;
  }

  function start() {
    var blocks = findBlocks();
    var container = document.querySelector(opt("container", "[data-newsrec]"));
    if (!blocks.length && !container) return;
    var k = parseInt(opt("k", String(Math.max(container ? 3 : 1, blocks.length))), 10) || 3;
    var id = opt("article-id", null) ||
      (document.querySelector("[data-article-id]") || { getAttribute: function () { return null; } }).getAttribute("data-article-id");
    var canonical = document.querySelector('link[rel="canonical"]');
    var byText = function () {
      var h1 = document.querySelector("h1");
      return request(api + "/api/related", {
        title: (h1 ? h1.textContent : document.title || "").trim(),
        body: articleText(blocks),
        published: pagePublished(),
        url: location.href,
        lang: pageLang,
        k: k
      });
    };
    var first;
    if (id) first = request(api + "/api/related?k=" + k + "&id=" + encodeURIComponent(id));
    else if (canonical && canonical.href) first = request(api + "/api/related?k=" + k + "&url=" + encodeURIComponent(canonical.href));
    else first = byText();
    first.then(function (data) { return data || (id || canonical ? byText() : null); })
      .then(function (data) {
        if (place(data, blocks, container)) {
          document.documentElement.setAttribute("data-newsrec", "ready");
          document.dispatchEvent(new CustomEvent("newsrec:ready", { detail: { count: data.items.length } }));
        } else {
          document.documentElement.setAttribute("data-newsrec", "empty");
        }
      })
      .catch(function () {
        // Network error, timeout or bad answer: the original links stay where they are.
        document.documentElement.setAttribute("data-newsrec", "failed");
      });
  }

  // Ask for the list only when a block comes within a screen of the viewport: a reader who never
  // scrolls near it costs the page (and the server) nothing.
  function whenNear() {
    var targets = findBlocks();
    var container = document.querySelector(opt("container", "[data-newsrec]"));
    if (container) targets.push(container);
    if (!targets.length) return;
    if (typeof IntersectionObserver === "undefined") return start();
    var io = new IntersectionObserver(function (es) {
      if (es.some(function (e) { return e.isIntersecting; })) { io.disconnect(); start(); }
    }, { rootMargin: "100% 0px" });
    targets.forEach(function (t) { io.observe(t); });
  }

  try {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { try { whenNear(); } catch (e) {} });
    else whenNear();
  } catch (e) { /* never break the host page */ }
})();
