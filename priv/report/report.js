(function () {
  "use strict";
  var filter = document.getElementById("filter");
  var onlyMissed = document.getElementById("only-missed");
  var counter = document.getElementById("shown-count");
  if (!filter || !onlyMissed) { return; }
  var rows = Array.prototype.slice.call(document.querySelectorAll("#files tbody tr"));

  function apply() {
    var q = filter.value.toLowerCase();
    var shown = 0;
    rows.forEach(function (row) {
      var name = (row.getAttribute("data-name") || "").toLowerCase();
      var misses = parseInt(row.getAttribute("data-misses") || "0", 10);
      var visible = name.indexOf(q) !== -1 && (!onlyMissed.checked || misses > 0);
      row.classList.toggle("hidden", !visible);
      var section = document.getElementById(row.getAttribute("data-target"));
      if (section) { section.classList.toggle("hidden", !visible); }
      if (visible) { shown += 1; }
    });
    if (counter) { counter.textContent = shown + " / " + rows.length + " files"; }
  }

  // Deep links: coverage.html?filter=calc&missed=1 opens pre-filtered.
  if (window.URLSearchParams && window.location.search) {
    var params = new URLSearchParams(window.location.search);
    if (params.has("filter")) { filter.value = params.get("filter"); }
    if (params.get("missed") === "1") { onlyMissed.checked = true; }
  }

  filter.addEventListener("input", apply);
  onlyMissed.addEventListener("change", apply);
  apply();
})();
