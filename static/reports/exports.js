// The exports page: show only the fields and formats the chosen kind takes, and poll the
// progress of running exports until they finish (a reload picks the poll up again).
(function () {
  "use strict";
  var kinds = JSON.parse(document.getElementById("export-kinds").textContent);
  var strings = JSON.parse(document.getElementById("export-strings").textContent);
  var byCode = {};
  kinds.forEach(function (k) { byCode[k.code] = k; });

  var form = document.getElementById("export-form");
  if (form) {
    var kindSelect = form.querySelector("[name=kind]");
    var formatSelect = form.querySelector("[name=format]");
    var sync = function () {
      var kind = byCode[kindSelect.value];
      if (!kind) { return; }
      form.querySelectorAll(".export-field").forEach(function (p) {
        var name = p.getAttribute("data-param");
        if (name === "kind" || name === "format") { return; }
        p.hidden = kind.params.indexOf(name) === -1;
      });
      Array.prototype.forEach.call(formatSelect.options, function (option) {
        var allowed = kind.formats.indexOf(option.value) !== -1;
        option.hidden = !allowed;
        option.disabled = !allowed;
      });
      // The kind's own first format (its usual one) when the chosen one does not fit.
      if (kind.formats.indexOf(formatSelect.value) === -1) { formatSelect.value = kind.formats[0]; }
    };
    kindSelect.addEventListener("change", sync);
    sync();
  }

  var table = document.querySelector("table.exports");
  if (!table) { return; }
  var url = table.getAttribute("data-status-url");
  var busy = function () {
    return table.querySelector("tr[data-status=queued], tr[data-status=running]") !== null;
  };
  var sizeText = function (bytes) {
    if (bytes === null || bytes === undefined) { return ""; }
    var units = ["B", "KB", "MB", "GB"];
    var i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i += 1; }
    return (i ? bytes.toFixed(1) : String(bytes)) + "\u00a0" + units[i];
  };
  var update = function (row) {
    var tr = document.getElementById("export-" + row.id);
    if (!tr) { return false; }
    var before = tr.getAttribute("data-status");
    tr.setAttribute("data-status", row.status);
    var bar = tr.querySelector("progress");
    if (row.percent === null) { bar.removeAttribute("value"); } else { bar.value = row.percent; }
    tr.querySelector("[data-role=status]").textContent =
      row.status_label + (row.stalled ? " · " + strings.stalled : "");
    tr.querySelector("[data-role=count]").textContent =
      row.total ? row.done + " / " + row.total : (row.done ? String(row.done) : "");
    tr.querySelector("[data-role=error]").textContent = row.error || "";
    tr.querySelector("[data-role=size]").textContent = sizeText(row.size);
    if (row.download_url && before !== "done") {
      var actions = tr.querySelector("[data-role=actions]");
      actions.textContent = "";
      var link = document.createElement("a");
      link.className = "button";
      link.href = row.download_url;
      link.textContent = strings.download;
      actions.appendChild(link);
    } else if (row.status === "failed" && before !== "failed") {
      tr.querySelector("[data-role=actions]").textContent = strings.retry;
    }
    return true;
  };
  var poll = function () {
    if (!busy()) { return; }
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data) { data.exports.forEach(update); }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  };
  window.setTimeout(poll, 500);
})();
