// vanthu pages: live refresh of the deadline and inbox lists. The pages
// work without this script; with it, a list follows its projection: the
// server names each new position (server-sent events, /ui/live) and the
// list is fetched again at that position and swapped in.
"use strict";
(function () {
  var box = document.getElementById("live");
  if (!box || !window.EventSource || !window.fetch) return;
  var view = box.getAttribute("data-live");
  var seen = Number(box.getAttribute("data-position")) || 0;
  var busy = false, again = false;
  function refresh(position) {
    if (busy) { again = true; return; }
    busy = true;
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    url.searchParams.set("min_position", String(position));
    fetch(url.toString(), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected || !r.ok) { return null; }
        return r.text();
      })
      .then(function (html) {
        if (html !== null) {
          box.innerHTML = html;
          box.setAttribute("data-position", String(position));
          box.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(seen); }
      });
  }
  // One stream while the page is shown: a browser allows few connections
  // per site, and hidden tabs should not hold them.
  var source = null;
  function open() {
    if (source) return;
    source = new EventSource("/ui/live?view=" + encodeURIComponent(view) + "&after=" + seen);
    source.addEventListener("moved", function (e) {
      var position = Number(e.data);
      if (!(position > seen)) return;
      seen = position;
      refresh(position);
    });
  }
  function close() {
    if (source) { source.close(); source = null; }
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { close(); } else { open(); }
  });
  if (!document.hidden) open();
})();
