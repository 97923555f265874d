/* The page's three views as tabs (WAI-ARIA): the forward trace, the backward trace, and how the
   GPU runs it. On a tab, ← → Home End move between tabs; 1, 2, 3 pick one from anywhere. */
"use strict";
(function (V) {
  V.MODES = ["fwd", "bwd", "gpu"];

  /** Wires the tabs inside element; onShow(mode) runs after a view is shown. Returns show(mode). */
  V.setupModes = function (element, onShow) {
    const tabs = [...element.querySelectorAll("[role=tab]")];
    function show(mode, focus) {
      if (!V.MODES.includes(mode)) mode = "fwd";
      for (const t of tabs) {
        const on = t.dataset.mode === mode;
        t.setAttribute("aria-selected", String(on));
        t.tabIndex = on ? 0 : -1;
        document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
        if (on && focus) t.focus();
      }
      element.dataset.mode = mode;
      onShow(mode);
    }
    tabs.forEach((t, i) => {
      t.addEventListener("click", () => show(t.dataset.mode));
      t.addEventListener("keydown", (e) => {
        const j = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
        if (j === undefined || e.ctrlKey || e.metaKey || e.altKey) return;
        e.preventDefault();
        e.stopPropagation(); // not a playback key here
        show(tabs[(j + tabs.length) % tabs.length].dataset.mode, true);
      });
    });
    return show;
  };
})((window.RmsViz = window.RmsViz || {}));
