// Accessibility checks run in the page by the browser tests: every form control has a label,
// every button a name, and text meets WCAG AA contrast against the background it sits on.
() => {
  const problems = [];
  const named = (e) => (e.labels && e.labels.length) || e.getAttribute("aria-label") || e.getAttribute("aria-labelledby");
  document.querySelectorAll("input:not([type=hidden]), select, textarea").forEach((e) => {
    if (!named(e)) problems.push("no label: " + (e.name || e.id || e.outerHTML.slice(0, 60)));
  });
  document.querySelectorAll("button").forEach((b) => {
    if (!b.textContent.trim() && !b.getAttribute("aria-label")) problems.push("unnamed button");
  });
  const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (e) => {
    for (let n = e; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c;
    }
    return [255, 255, 255];
  };
  document.querySelectorAll("body *:not(svg):not(svg *):not(script):not(style):not(option)").forEach((e) => {
    const text = [...e.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim();
    if (!text || e.offsetParent === null || e.closest("[disabled]")) return;
    const style = getComputedStyle(e);
    const fg = lum(rgb(style.color)), bg = lum(background(e));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) problems.push("contrast " + ratio.toFixed(2) + " < " + need + ": " + text.slice(0, 40));
  });
  return problems;
}
