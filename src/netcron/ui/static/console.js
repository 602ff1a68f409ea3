// netcron console: optional enhancements. Every page works without this file.
// - pages with data-events refresh their [data-live] regions when an event arrives (SSE);
// - [data-copy] buttons copy an element's text; forms with data-confirm ask first.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function refresh() {
    return fetch(location.href, { credentials: "same-origin", headers: { "X-Console-Refresh": "1" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (region) {
          var next = fresh.getElementById(region.id);
          if (next) { region.replaceWith(document.importNode(next, true)); }
        });
        var title = fresh.querySelector("h1"), mine = document.querySelector("main h1");
        if (title && mine && title.innerHTML !== mine.innerHTML) { mine.replaceWith(document.importNode(title, true)); }
        return fresh.body.dataset.events;
      });
  }

  // At most one refresh a second however many events arrive: a busy fleet sends many.
  var GAP_MS = 1000;

  function live(url) {
    var state = document.getElementById("live-state");
    var source = new EventSource(url);
    var waiting = false, again = false;
    function soon() {
      if (waiting) { again = true; return; }
      waiting = true;
      setTimeout(function () {
        refresh().then(function (stillLive) {
          if (!stillLive) { source.close(); if (state) { state.textContent = ""; } }
          if (state) { state.dataset.updated = new Date().toISOString(); }
        }).catch(function () { /* the next event tries again */ }).then(function () {
          setTimeout(function () {
            waiting = false;
            if (again) { again = false; soon(); }
          }, GAP_MS);
        });
      }, 150);
    }
    source.onopen = function () { if (state) { state.textContent = "live"; } };
    source.onerror = function () { if (state) { state.textContent = "reconnecting"; } };
    source.onmessage = soon;
    window.addEventListener("pagehide", function () { source.close(); });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var target = document.getElementById(button.dataset.copy);
    if (!target || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(target.textContent).then(function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    }, function () { button.textContent = "Copy failed"; });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { event.preventDefault(); }
  });

  var url = document.body.dataset.events;
  if (url && window.EventSource) { live(url); }
})();
