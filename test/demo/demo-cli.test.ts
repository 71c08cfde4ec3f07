// `fencelock demo` as a user runs it (embedded lockd, both scenarios), then its HTML page opened in
// headless Chromium: the drawn elements are checked and a screenshot taken (into the test's temp
// directory; `npm run picture` refreshes the README's).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type Browser, chromium } from "playwright-core";
import { CLI_PATH, type TempDir, tempDir } from "../../src/testkit/index.js";
import { assertLayout } from "../layout.js";

const run = promisify(execFile);
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
];

interface ResultLine {
  scenario: string;
  kind: "result";
  finalValue: string | null;
  correct: boolean;
  exitCodes: { client1: number; client2: number };
  writes: {
    client: string;
    token: string | null;
    accepted: boolean;
    maxToken: string | null;
    stale: boolean;
  }[];
}

describe("fencelock demo (embedded lockd)", () => {
  let dir: TempDir | undefined;
  let html = "";
  let lines: Record<string, unknown>[] = [];

  let browser: Browser | undefined;

  before(async () => {
    dir = await tempDir("demo-cli");
    html = join(dir.path, "demo.html");
    // Chromium starts while the demo runs.
    const launching = chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
    try {
      const { stdout } = await run(process.execPath, [CLI_PATH, "demo", "--json", "--html", html], {
        timeout: 60_000,
      });
      lines = stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    } finally {
      browser = await launching;
    }
  });
  after(async () => {
    await browser?.close();
    await dir?.remove();
  });

  test("--json says where it wrote the HTML page", () => {
    assert.deepEqual(
      lines.filter((l) => l.kind === "html"),
      [{ kind: "html", path: html }],
    );
  });

  test("unsafe ends with client 1's value, fenced with client 2's, the refused token was the lower", () => {
    const results = lines.filter((l) => l.kind === "result") as unknown as ResultLine[];
    assert.deepEqual(
      results.map((r) => [r.scenario, r.finalValue, r.correct]),
      [
        ["unsafe", "value from client 1", false],
        ["fenced", "value from client 2", true],
      ],
    );
    const fenced = results[1] as ResultLine;
    const refused = fenced.writes.find((w) => !w.accepted);
    assert.equal(refused?.client, "client 1");
    assert.ok(refused?.token && refused.maxToken && BigInt(refused.token) < BigInt(refused.maxToken));
    assert.deepEqual(fenced.exitCodes, { client1: 3, client2: 0 });
    const unsafeStale = (results[0] as ResultLine).writes.find((w) => w.client === "client 1");
    assert.deepEqual([unsafeStale?.stale, unsafeStale?.accepted, unsafeStale?.token], [true, true, null]);
  });

  test("the events come from the clients, the lock service and the storage's audit log", () => {
    const events = lines.filter((l) => l.kind !== "result");
    const fenced = events.filter((e) => e.scenario === "fenced");
    const has = (actor: string, kind: string) => fenced.some((e) => e.actor === actor && e.kind === kind);
    for (const [actor, kind] of [
      ["client 1", "acquired"],
      ["client 1", "pause"],
      ["demo", "freeze"],
      ["lock service", "expired"],
      ["lock service", "granted"],
      ["client 2", "acquired"],
      ["storage", "stored"],
      ["storage", "rejected"],
      ["client 1", "refused"],
    ]) {
      assert.ok(has(actor as string, kind as string), `${actor} ${kind}`);
    }
    const times = fenced.map((e) => e.sinceStartMs as number);
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      "live events are printed in time order",
    );
  });

  test("the HTML page draws lanes, writes and the refused mark, legible at 1200 px, and can be screenshot", async () => {
    assert.ok(browser);
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    try {
      const requests: string[] = [];
      page.on("request", (r) => {
        if (!r.url().startsWith("file:")) requests.push(r.url());
      });
      await page.goto(`file://${html}`);
      const fenced = page.locator('section[data-scenario="fenced"]');
      const unsafe = page.locator('section[data-scenario="unsafe"]');
      for (const section of [fenced, unsafe]) {
        assert.deepEqual(
          await section.locator("g.lane").evaluateAll((gs) => gs.map((g) => g.getAttribute("data-lane"))),
          ["client 1", "lock service", "client 2", "storage"],
        );
        assert.equal(await section.locator("line.arrow.write").count(), 2);
        assert.equal(await section.locator("rect.span.pause").count(), 1);
        assert.ok((await section.locator("g.mark.expired").count()) >= 1);
      }
      assert.equal(await fenced.locator('line.arrow.write[data-accepted="false"]').count(), 1);
      assert.equal(await fenced.locator("g.mark.refused").count(), 1);
      assert.equal(await unsafe.locator("g.mark.refused").count(), 0);
      assert.equal(await unsafe.locator("g.mark.accepted").count(), 2);
      const refusedLabel = await fenced.locator("text.refused-label").textContent();
      assert.match(refusedLabel ?? "", /^refused: token (\d+) < (\d+)$/);
      const [, low, high] = /(\d+) < (\d+)/.exec(refusedLabel ?? "") as RegExpExecArray;
      assert.ok(BigInt(low as string) < BigInt(high as string));
      assert.match((await unsafe.locator("p.verdict").textContent()) ?? "", /^WRONG/);
      assert.match((await fenced.locator("p.verdict").textContent()) ?? "", /^RIGHT/);
      // Drawn, not just present: the refused mark has a size and lies inside its figure.
      const mark = await fenced.locator("g.mark.refused").boundingBox();
      const svg = await fenced.locator("svg").boundingBox();
      assert.ok(mark && svg && mark.width > 5 && mark.height > 5);
      assert.ok(mark.x >= svg.x && mark.x + mark.width <= svg.x + svg.width);
      assert.deepEqual(requests, [], "the page fetches nothing");
      await assertLayout(page, {
        figures: "svg.timeline",
        shapes: "line.arrow, g.mark",
        drawn: "svg.timeline .span, svg.timeline .mark, svg.timeline .arrow",
        minDrawn: 8,
      });
      const screenshot = join((dir as TempDir).path, "demo-timeline.png");
      await page.screenshot({ path: screenshot, fullPage: true });
      assert.ok((await stat(screenshot)).size > 10_000, "the screenshot has content");
    } finally {
      await page.close();
    }
  });
});
