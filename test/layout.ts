// The layout checks shared by the Chromium tests of the demo's and the torture harness's HTML pages.
import assert from "node:assert/strict";
import type { Page } from "playwright-core";

/** Where to look on the page. */
export interface LayoutSelectors {
  /** The figures: every `text` inside one must clear every other. */
  figures: string;
  /** Inside a figure, what a `text.label` must not cover (arrows, marks). */
  shapes: string;
  /** Everything drawn that needs a legend entry; keyed `<first class>-<data-kind>`. */
  drawn: string;
  /** At least this many drawn elements, so an empty page cannot pass. */
  minDrawn: number;
}

/** Runs in the page (passed as text: the test build has no DOM types). */
const IN_PAGE = `(sel) => {
  const box = (e) => {
    const r = e.getBoundingClientRect();
    return { x1: r.left, x2: r.right, y1: r.top, y2: r.bottom, what: e.tagName + ' "' + e.textContent + '"' };
  };
  const meet = (a, b) => a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2;
  const clashes = [];
  for (const svg of document.querySelectorAll(sel.figures)) {
    const texts = [...svg.querySelectorAll("text")].map(box);
    texts.forEach((a, i) => {
      for (const b of texts.slice(i + 1)) if (meet(a, b)) clashes.push(a.what + " over " + b.what);
    });
    const shapes = [...svg.querySelectorAll(sel.shapes)].map(box);
    for (const l of [...svg.querySelectorAll("text.label")].map(box))
      for (const s of shapes) if (meet(l, s)) clashes.push(l.what + " over " + s.what);
  }
  const drawn = [...document.querySelectorAll(sel.drawn)].map(
    (e) => e.classList[0] + "-" + e.getAttribute("data-kind"),
  );
  const keys = new Set([...document.querySelectorAll(".legend .key")].map((e) => e.getAttribute("data-key")));
  return {
    clashes,
    unexplained: [...new Set(drawn)].filter((k) => !keys.has(k)),
    drawn: drawn.length,
    scrollWidth: document.documentElement.scrollWidth,
  };
}`;

interface Found {
  clashes: string[];
  unexplained: string[];
  drawn: number;
  scrollWidth: number;
}

/**
 * Asserts what a picture must hold to in a 1200 px wide window: no text over other text, no label
 * over an arrow or a mark, nothing wider than the window, and a legend entry (`.legend .key` with
 * `data-key`) for every kind of thing drawn.
 */
export async function assertLayout(page: Page, sel: LayoutSelectors): Promise<void> {
  assert.equal(page.viewportSize()?.width, 1200, "checked at 1200 px");
  const found = (await page.evaluate(`(${IN_PAGE})(${JSON.stringify(sel)})`)) as Found;
  assert.deepEqual(found.clashes, [], "no text over other text, no label over an arrow or a mark");
  assert.ok(found.drawn >= sel.minDrawn, `at least ${sel.minDrawn} things drawn, found ${found.drawn}`);
  assert.deepEqual(found.unexplained, [], "every kind of thing drawn is in the legend");
  assert.ok(
    found.scrollWidth <= 1200,
    `no horizontal scrolling at 1200 px (scrollWidth ${found.scrollWidth})`,
  );
}
