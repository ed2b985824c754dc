// Demo page behaviour: the before/after toggle and the search box. No inline script (CSP).
(function () {
  "use strict";
  var toggle = document.getElementById("toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var on = document.body.classList.toggle("show-original");
      toggle.setAttribute("aria-pressed", on ? "true" : "false");
      toggle.textContent = on ? "Show related stories" : "Show original links";
    });
  }
  var input = document.getElementById("search-q");
  var list = document.getElementById("search-results");
  var form = document.getElementById("search-form");
  if (!input || !list) return;
  var timer = null;
  function show(items) {
    list.textContent = "";
    items.forEach(function (it) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = "/article/" + encodeURIComponent(it.id);
      a.textContent = it.title + (it.published ? " (" + it.published + ")" : "");
      li.appendChild(a);
      list.appendChild(li);
    });
    list.hidden = items.length === 0;
  }
  input.addEventListener("input", function () {
    clearTimeout(timer);
    var q = input.value.trim();
    if (q.length < 2) { show([]); return; }
    timer = setTimeout(function () {
      fetch("/api/search?q=" + encodeURIComponent(q)).then(function (r) { return r.ok ? r.json() : { items: [] }; })
        .then(function (d) { show(d.items || []); }).catch(function () { show([]); });
    }, 150);
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var first = list.querySelector("a");
    if (first) location.href = first.href;
  });
})();
