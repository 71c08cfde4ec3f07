// Refreshes docs/demo-timeline.png, the README's picture: runs `fencelock demo` (embedded lockd, both
// scenarios) into a temporary HTML page and screenshots it in headless Chromium. Run after `npm run build`
// (`npm run picture` does both). The tests never write into the work tree; this script does, on purpose.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const dir = mkdtempSync(join(tmpdir(), "fencelock-picture-"));
const out = new URL("../docs/demo-timeline.png", import.meta.url).pathname;
try {
  const html = join(dir, "demo.html");
  execFileSync(process.execPath, ["dist/src/cli/main.js", "demo", "--json", "--html", html], {
    stdio: ["ignore", "ignore", "inherit"],
    timeout: 120_000,
  });
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--no-first-run",
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(`file://${html}`);
    await page.screenshot({ path: out, fullPage: true });
  } finally {
    await browser.close();
  }
  console.log(`wrote ${out}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
