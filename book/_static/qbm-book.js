// QBM-Lite book: fit wide display equations and output tables to the text column.
// MathJax 3 does not break long equations into lines, and a clipped or sideways-scrolling
// equation or table hides its right-hand side (a table's "Total" column). Down to MIN_SCALE
// an equation or a table is scaled to fit; an equation that needs more is too long and should
// be split in the chapter's source, and a table that needs more may break its headers inside
// words (class qbm-table-tight) before it scrolls.
(function () {
  "use strict";
  const MIN_SCALE = 0.7;
  const TABLE_MIN_SCALE = 0.8;

  function fitTables() {
    document.querySelectorAll(".cell_output table").forEach(function (table) {
      const box = table.closest(".cell_output");
      table.style.fontSize = "";
      table.classList.remove("qbm-table-tight");
      const available = box ? box.clientWidth : 0;
      const needed = table.getBoundingClientRect().width;
      if (available <= 0 || needed <= available) return;
      const size = parseFloat(getComputedStyle(table).fontSize);
      const scale = Math.max(TABLE_MIN_SCALE, (0.98 * available) / needed);
      table.style.fontSize = (size * scale).toFixed(2) + "px";
      if (table.getBoundingClientRect().width > available) {
        table.classList.add("qbm-table-tight");
      }
    });
  }

  function fitDisplayMath() {
    document.querySelectorAll('mjx-container[display="true"]').forEach(function (box) {
      const holder = box.parentElement;
      if (!holder) return;
      holder.style.fontSize = "";
      const math = box.querySelector("mjx-math");
      if (!math) return;
      const available = box.clientWidth;
      const needed = math.getBoundingClientRect().width;
      if (available > 0 && needed > available) {
        const scale = Math.max(MIN_SCALE, (0.98 * available) / needed);
        holder.style.fontSize = (100 * scale).toFixed(1) + "%";
        holder.classList.add("qbm-math-fitted");
      }
    });
  }

  function whenTypeset() {
    fitTables();
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      MathJax.startup.promise.then(fitDisplayMath);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", whenTypeset);
  } else {
    whenTypeset();
  }
  window.addEventListener("load", fitTables); // again once images and fonts are in
  let pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () {
      fitTables();
      fitDisplayMath();
    }, 100);
  });
})();
