// What tests/e2e/test_gallery.py checks on every view of every page: a list of problems.
(() => {
  const problems = [];
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none";
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : "");
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth) {
    problems.push(`page scrolls sideways: ${doc.scrollWidth} > ${window.innerWidth}`);
  }
  const card = document.querySelector(".card");
  if (card) {
    const box = card.getBoundingClientRect();
    for (const el of card.querySelectorAll("*")) {
      if (!visible(el) || el.closest(".visually-hidden")) continue;
      const r = el.getBoundingClientRect();
      if (r.right > box.right + 0.5 || r.left < box.left - 0.5) {
        problems.push(`${name(el)} sticks out of the card (${r.left}-${r.right} vs ${box.left}-${box.right})`);
      }
    }
  }
  for (const el of document.querySelectorAll("[hidden]")) {
    if (el.getClientRects().length) problems.push(`${name(el)} is hidden but shown`);
  }
  const boxes = "h1, h2, p, li, dt, dd, label, a, button, .message, figure, legend, strong, code";
  for (const el of document.querySelectorAll(boxes)) {
    if (!visible(el) || el.closest(".visually-hidden")) continue;
    if (el.textContent.trim() === "" && !el.querySelector("img, svg, input, select, textarea")) {
      problems.push(`${name(el)} is visible and empty`);
    }
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== "visible") {
      problems.push(`${name(el)} clips its text`);
    }
  }
  const h1 = [...document.querySelectorAll("h1")].filter(visible);
  if (h1.length !== 1) problems.push(`${h1.length} visible h1`);
  for (const el of document.querySelectorAll("[tabindex]")) {
    if (el.tabIndex > 0) problems.push(`${name(el)} has tabindex ${el.tabIndex}`);
  }
  for (const img of document.images) {
    if (visible(img) && !(img.complete && img.naturalWidth > 0)) problems.push(`${name(img)} did not load`);
  }
  if (document.querySelectorAll("[autofocus]").length > 1) problems.push("more than one autofocus");
  return problems;
})
