// The case page's completion check: of the groups of flags to acknowledge, one per visit
// the check may be judged on, show (and ask for) only the chosen visit's. The others are
// disabled, so they are neither validated nor sent. Without this script the page shows
// every group and the server reads only the chosen visit's.
(function () {
  "use strict";
  document.querySelectorAll("select[data-visit-select]").forEach(function (select) {
    var groups = select.form.querySelectorAll("fieldset[data-visit]");
    var sync = function () {
      groups.forEach(function (group) {
        var chosen = group.getAttribute("data-visit") === select.value;
        group.hidden = !chosen;
        group.disabled = !chosen;
        group.querySelectorAll("textarea").forEach(function (area) { area.required = chosen; });
      });
    };
    select.addEventListener("change", sync);
    sync();
  });
})();
