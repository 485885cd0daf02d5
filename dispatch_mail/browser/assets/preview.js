// The preview page's switches (kept in the URL's #fragment, so they survive the reloads),
// its scroll position across reloads, and the live-reload event stream.
(function () {
  "use strict";
  var body = document.body;
  var allowed = { width: ["desktop", "phone", "narrow"], scheme: ["light", "dark"], view: ["html", "text"] };
  var state = { width: "desktop", scheme: "light", view: "html" };
  location.hash.slice(1).split("&").forEach(function (part) {
    var kv = part.split("=");
    var key = decodeURIComponent(kv[0] || ""), value = decodeURIComponent(kv[1] || "");
    if (allowed.hasOwnProperty(key) && allowed[key].indexOf(value) >= 0) { state[key] = value; }
  });
  var frame = document.getElementById("frame");
  var main = document.getElementById("main");
  var scrollKey = "dispatch-preview-scroll:" + location.pathname;

  function apply() {
    Object.keys(state).forEach(function (key) { body.setAttribute("data-" + key, state[key]); });
    document.querySelectorAll("button[data-set]").forEach(function (button) {
      var on = state[button.getAttribute("data-set")] === button.getAttribute("data-value");
      button.setAttribute("aria-pressed", on ? "true" : "false");
    });
    if (frame) {
      var src = "email.html?scheme=" + state.scheme;  // relative: the issue's own, at / or /<slug>/
      if (frame.getAttribute("src") !== src) { frame.setAttribute("src", src); }
    }
    var hash = Object.keys(state).map(function (key) { return key + "=" + state[key]; }).join("&");
    history.replaceState(null, "", "#" + hash);
  }
  document.querySelectorAll("button[data-set]").forEach(function (button) {
    button.addEventListener("click", function () {
      state[button.getAttribute("data-set")] = button.getAttribute("data-value");
      apply();
    });
  });

  function saveScroll() {
    var frameY = 0;
    try { frameY = frame ? frame.contentWindow.scrollY : 0; } catch (e) {}
    sessionStorage.setItem(scrollKey, JSON.stringify({ frame: frameY, main: main.scrollTop }));
  }
  var saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(scrollKey) || "null"); } catch (e) {}
  sessionStorage.removeItem(scrollKey);
  if (saved) {
    main.scrollTop = saved.main || 0;
    if (frame) {
      frame.addEventListener("load", function () {
        try { frame.contentWindow.scrollTo(0, saved.frame || 0); } catch (e) {}
      }, { once: true });
    }
  }
  apply();

  var issue = document.getElementById("issue");  // several issues previewed: go to another
  if (issue) {
    issue.addEventListener("change", function () { location.href = issue.value + location.hash; });
  }

  var live = document.getElementById("live");
  var events = new EventSource("events?since=" + encodeURIComponent(body.getAttribute("data-version")));
  events.addEventListener("open", function () { live.textContent = "live"; live.className = ""; });
  events.addEventListener("error", function () { live.textContent = "reconnecting\u2026"; live.className = "down"; });
  events.addEventListener("reload", function () { saveScroll(); location.reload(); });
})();
