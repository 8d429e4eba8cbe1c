// LiveCov Cover Center: small enhancements of the server-rendered pages.
// Filter and sort tables, local times, optional auto-refresh. Works without it too.
(function () {
  "use strict";

  function rows(table) {
    return Array.prototype.slice.call(table.tBodies[0].rows).filter(function (r) {
      return !r.classList.contains("empty");
    });
  }

  function updateCount(id) {
    var table = document.getElementById(id);
    var count = document.querySelector('.shown-count[data-table="' + id + '"]');
    if (!table || !count) return;
    var all = rows(table);
    var shown = all.filter(function (r) { return !r.classList.contains("hidden"); });
    count.textContent = shown.length + " / " + all.length + " files";
  }

  function applyFilter(input) {
    var id = input.getAttribute("data-table");
    var table = document.getElementById(id);
    if (!table) return;
    var needle = input.value.trim().toLowerCase();
    rows(table).forEach(function (r) {
      var name = (r.getAttribute("data-name") || "").toLowerCase();
      r.classList.toggle("hidden", needle !== "" && name.indexOf(needle) === -1);
    });
    updateCount(id);
  }

  function cellValue(row, index, kind) {
    var cell = row.cells[index];
    if (!cell) return kind === "num" ? 0 : "";
    var raw = cell.getAttribute("data-value");
    if (raw === null) raw = cell.textContent.trim();
    if (kind === "num") {
      var n = parseFloat(raw);
      return isNaN(n) ? -1 : n;
    }
    return raw.toLowerCase();
  }

  function sortBy(th) {
    var table = th.closest("table");
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var kind = th.getAttribute("data-sort");
    var asc = !th.classList.contains("sorted-asc");
    Array.prototype.forEach.call(th.parentNode.children, function (h) {
      h.classList.remove("sorted-asc", "sorted-desc");
    });
    th.classList.add(asc ? "sorted-asc" : "sorted-desc");
    var body = table.tBodies[0];
    rows(table)
      .sort(function (a, b) {
        var x = cellValue(a, index, kind), y = cellValue(b, index, kind);
        var c = x < y ? -1 : x > y ? 1 : 0;
        return asc ? c : -c;
      })
      .forEach(function (r) { body.appendChild(r); });
  }

  function ago(ms) {
    var s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }

  function localTimes() {
    document.querySelectorAll("time[data-ms]").forEach(function (t) {
      var ms = parseInt(t.getAttribute("data-ms"), 10);
      if (isNaN(ms)) return;
      t.title = new Date(ms).toLocaleString();
      var span = t.querySelector(".ago");
      if (!span) {
        span = document.createElement("span");
        span.className = "ago";
        t.appendChild(span);
      }
      span.textContent = "(" + ago(ms) + ")";
    });
  }

  function autoRefresh() {
    var box = document.getElementById("auto-refresh");
    if (!box) return;
    var key = "livecov-auto-refresh";
    var on = false;
    try { on = window.localStorage.getItem(key) === "1"; } catch (e) { on = false; }
    box.checked = on;
    box.addEventListener("change", function () {
      try { window.localStorage.setItem(key, box.checked ? "1" : "0"); } catch (e) { /* private mode */ }
      if (box.checked) window.location.reload();
    });
    if (on) {
      window.setTimeout(function () {
        var typing = document.activeElement && document.activeElement.tagName === "INPUT" &&
          document.activeElement.type === "search";
        if (!typing) window.location.reload();
      }, 10000);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input.filter").forEach(function (input) {
      input.addEventListener("input", function () { applyFilter(input); });
      applyFilter(input);
    });
    document.querySelectorAll("th[data-sort]").forEach(function (th) {
      th.addEventListener("click", function () { sortBy(th); });
    });
    localTimes();
    window.setInterval(localTimes, 30000);
    autoRefresh();
  });
})();
