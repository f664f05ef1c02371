// QBM-Lite book: shrink a display equation that is wider than the text column.
// MathJax 3 does not break long equations into lines, and a clipped or sideways-scrolling
// equation hides its right-hand side. Down to MIN_SCALE the equation is scaled to fit;
// an equation that needs more is too long and should be split in the chapter's source.
(function () {
  "use strict";
  const MIN_SCALE = 0.7;

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
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      MathJax.startup.promise.then(fitDisplayMath);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", whenTypeset);
  } else {
    whenTypeset();
  }
  let pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(fitDisplayMath, 100);
  });
})();
