// The leaderboard page's sortable table (harness/leaderboard.py), inlined into index.html.
// Sorting: rows compare by their cells' data-value (numbers numerically, text by localeCompare); an empty value
// sorts last in either direction. The first click on a header sorts in its data-first direction, the next reverses.
// The self-test hook acts only on the URL fragment "#selftest=COLUMN[,COLUMN...]" (data-column keys): it clicks
// those headers in turn and appends a pre element with id "selftest" holding, as JSON, the row names before and
// after, each click's resulting direction and the baseline rows.
(function () {
  "use strict";
  var table = document.getElementById("leaderboard");
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);

  function compare(a, b, numeric) {
    if (a === "" || b === "") { return (a === "") - (b === ""); }
    return numeric ? Number(a) - Number(b) : a.localeCompare(b);
  }

  function sortBy(header) {
    var index = headers.indexOf(header);
    var numeric = header.dataset.numeric === "true";
    var current = header.getAttribute("aria-sort");
    var order = current ? (current === "ascending" ? "descending" : "ascending") : header.dataset.first;
    var sign = order === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (x, y) {
      var a = x.cells[index].dataset.value, b = y.cells[index].dataset.value;
      if (a === "" || b === "") { return compare(a, b, numeric); }
      return sign * compare(a, b, numeric);
    });
    headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", order);
    rows.forEach(function (row) { body.appendChild(row); });
  }

  headers.forEach(function (header) {
    header.addEventListener("click", function () { sortBy(header); });
    header.addEventListener("keydown", function (event) { if (event.key === "Enter") { sortBy(header); } });
  });

  function names() {
    return Array.prototype.map.call(table.tBodies[0].rows, function (row) { return row.dataset.name; });
  }

  var match = /^#selftest=(.+)$/.exec(window.location.hash);
  if (match) {
    var before = names(), clicked = [];
    decodeURIComponent(match[1]).split(",").forEach(function (key) {
      var header = headers.filter(function (h) { return h.dataset.column === key; })[0];
      if (header) { header.click(); clicked.push(key + ":" + header.getAttribute("aria-sort")); }
    });
    var baseline = Array.prototype.map.call(table.querySelectorAll("tr[data-baseline=true]"), function (row) { return row.dataset.name; });
    var out = document.createElement("pre");
    out.id = "selftest";
    out.textContent = JSON.stringify({before: before, after: names(), clicked: clicked, baseline: baseline});
    document.body.appendChild(out);
  }
}());
