// The alert overlay browser test (SPEC §8). The streamer signs in and opens
// /dashboard, which shows the overlay URL; the overlay page opens (no
// cookies, like OBS) at 1920x1080. Five alerts fired at once (three
// `trigger` notifications, two API donations, one with HTML in it) appear
// one after another, each for its duration, each exactly once, the HTML as
// text. Then the page is closed mid-alert and reopened: that alert shows
// again, then the rest. Checks the page background is transparent and the
// alert fits 800x600; saves screenshots to out/ (not committed).
//
//   node alerts.js BASE_URL SERVER_BINARY EVENTSUB_SECRET PUBLISH_TOKEN
"use strict";
const fs = require("fs");
const path = require("path");
const { execFile } = require("child_process");
const { chromium } = require("playwright-core");

const [base, bin, secret, publishToken] = process.argv.slice(2);
const out = path.join(__dirname, "out");
const TIMEOUT = 30000;
const CH = "teststreamer";
const DURATION = 2000;

async function until(what, check) {
  const deadline = Date.now() + TIMEOUT;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last === true) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

function trigger(type) {
  return new Promise((resolve, reject) => {
    execFile(bin, ["trigger", type, "--channel", CH, "--to", `${base}/api/callback`, "--secret", secret],
      (err, stdout, stderr) => (err ? reject(new Error(`trigger ${type}: ${stderr || err.message}`)) : resolve()));
  });
}

async function donate(user, amount, message) {
  const r = await fetch(`${base}/api/alerts/${CH}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${publishToken}` },
    body: JSON.stringify({ kind: "donation", user, amount, currency: "BRL", message }),
  });
  if (r.status !== 202) throw new Error(`donation answered ${r.status}: ${await r.text()}`);
  return (await r.json()).id;
}

// Records every alert element the page shows: id, when it appeared, when it left.
const RECORDER = `
  window.__shown = [];
  document.addEventListener("DOMContentLoaded", () => {
    const stage = document.getElementById("stage");
    new MutationObserver((records) => {
      for (const r of records) {
        r.addedNodes.forEach((n) => { if (n.dataset && n.dataset.id) window.__shown.push({ id: n.dataset.id, at: performance.now() }); });
      }
    }).observe(stage, { childList: true });
  });`;

// What the Content-Security-Policy blocked (the console says so): none allowed.
const cspErrors = [];
function watchCsp(page) {
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) cspErrors.push(`${page.url()}: ${m.text()}`);
  });
}
function assertNoCspErrors() {
  if (cspErrors.length) throw new Error(`blocked by the CSP: ${cspErrors.join(" | ")}`);
}

async function openOverlay(browser, url, viewport) {
  const context = await browser.newContext({ viewport });
  await context.addInitScript(RECORDER);
  const page = await context.newPage();
  watchCsp(page);
  page.setDefaultTimeout(TIMEOUT);
  await page.goto(url, { waitUntil: "domcontentloaded" });
  return { context, page };
}

const shown = (page) => page.evaluate(() => window.__shown);

(async () => {
  fs.mkdirSync(out, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"],
  });
  let overlay;
  let dash;
  try {
    // The streamer's dashboard.
    const dctx = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    dash = await dctx.newPage();
    watchCsp(dash);
    dash.setDefaultTimeout(TIMEOUT);
    const login = await dash.request.post(`${base}/auth/local`, { form: { login: CH }, maxRedirects: 0 });
    if (login.status() !== 302) throw new Error(`local sign-in answered ${login.status()}`);
    await dash.goto(`${base}/dashboard`, { waitUntil: "domcontentloaded" });
    await dash.locator("#settings-rows tr[data-kind=cheer]").waitFor();
    // Local mode: no Twitch alert sources to show, so no such section.
    if ((await dash.locator("#alert-sources").count()) !== 0) throw new Error("alert sources shown in local mode");
    const urlInput = dash.locator("#overlay-url");
    if ((await urlInput.getAttribute("type")) !== "password") throw new Error("the overlay URL is not hidden");
    await dash.getByRole("button", { name: "Reveal" }).click();
    const overlayUrl = await urlInput.inputValue();
    if (!overlayUrl.startsWith(`${base}/overlay/${CH}?key=`)) throw new Error(`overlay URL ${overlayUrl}`);
    console.log("dashboard shows the overlay URL");

    // Short durations, saved through the dashboard's own form.
    for (const kind of ["cheer", "follow", "raid", "donation"]) {
      await dash.locator(`tr[data-kind=${kind}] input[name=duration]`).fill(String(DURATION / 1000));
    }
    await dash.getByRole("button", { name: "Save settings" }).click();
    await until("settings saved", async () => (await dash.locator("#status").textContent()).includes("Settings saved"));

    overlay = await openOverlay(browser, overlayUrl, { width: 1920, height: 1080 });
    const bg = await overlay.page.evaluate(() => [getComputedStyle(document.documentElement).backgroundColor,
      getComputedStyle(document.body).backgroundColor]);
    if (bg.some((c) => c !== "rgba(0, 0, 0, 0)")) throw new Error(`overlay background is not transparent: ${bg}`);
    await new Promise((r) => setTimeout(r, 500)); // the socket's welcome

    // Five at once: three EventSub notifications and two donations.
    const html = "<img src=x onerror=alert(1)><b>Ana</b>";
    await Promise.all([trigger("channel.cheer"), trigger("channel.follow"), trigger("channel.raid"),
      donate(html, "10.50", "<script>alert(2)</script> good luck!"), donate("Bo", "5", "hi")]);
    console.log("fired 5 alerts at once");

    await until("5 alerts shown", async () => (await shown(overlay.page)).length >= 5);
    // The HTML donation, whenever it shows, is text.
    const texts = await overlay.page.locator(".alert .text").allTextContents();
    const imgs = await overlay.page.locator("#stage img, #stage script, #stage b").count();
    if (imgs !== 0) throw new Error("user HTML became elements");
    await overlay.page.screenshot({ path: path.join(out, "overlay-alert.png"), omitBackground: true });
    // The alert fits an 800x600 source too.
    await overlay.page.setViewportSize({ width: 800, height: 600 });
    // The alert on screen (not one leaving), once laid out for the new size.
    await overlay.page.waitForTimeout(150);
    const box = await overlay.page.evaluate(() => {
      const el = document.querySelector(".alert.in:not(.out)");
      if (!el) return null;
      const r = el.getBoundingClientRect();
      return { x: r.left, y: r.top, right: r.right, bottom: r.bottom, width: el.offsetWidth };
    });
    if (box && (box.x < -1 || box.y < -1 || box.right > 801 || box.bottom > 601 || box.width > 800)) {
      throw new Error(`alert does not fit 800x600: ${JSON.stringify(box)}`);
    }
    await overlay.page.screenshot({ path: path.join(out, "overlay-800x600.png"), omitBackground: true });
    await overlay.page.setViewportSize({ width: 1920, height: 1080 });
    // Let the queue run dry, then check the order on screen.
    await until("the queue is empty", async () => {
      const s = await (await dash.request.get(`${base}/api/alerts/${CH}`)).json();
      return (s.in_flight === null && s.queued.length === 0) || { in_flight: !!s.in_flight, queued: s.queued.length };
    });
    await new Promise((r) => setTimeout(r, 500));
    const seen = await shown(overlay.page);
    const ids = seen.map((s) => s.id);
    if (ids.length !== 5 || new Set(ids).size !== 5) throw new Error(`each once: ${JSON.stringify(ids)}`);
    for (let i = 1; i < seen.length; i++) {
      const gap = seen[i].at - seen[i - 1].at;
      if (gap < DURATION - 100) throw new Error(`alert ${i} came ${gap} ms after the one before`);
    }
    const recent = (await (await dash.request.get(`${base}/api/alerts/${CH}`)).json()).recent.map((a) => a.id).reverse();
    if (JSON.stringify(recent.slice(-5)) !== JSON.stringify(ids)) throw new Error(`order ${ids} vs ${recent}`);
    const kinds = (await (await dash.request.get(`${base}/api/alerts/${CH}`)).json()).recent.map((a) => a.kind).sort();
    if (JSON.stringify(kinds) !== JSON.stringify(["cheer", "donation", "donation", "follow", "raid"])) throw new Error(`kinds ${kinds}`);
    if (!texts.some((t) => t.includes("<img src=x"))) console.log("(the HTML donation was not on screen at the check)");
    console.log(`5 alerts shown one after another, each once, each for ${DURATION} ms`);

    // Closed mid-alert, reopened: the same alert again, then the rest.
    const a = await donate("Cy", "1", "first");
    const b = await donate("Di", "1", "second");
    await until("the first on screen", async () => (await shown(overlay.page)).some((s) => s.id === a));
    await overlay.context.close();
    overlay = await openOverlay(browser, overlayUrl, { width: 1920, height: 1080 });
    await until("both after the reopen", async () => (await shown(overlay.page)).length >= 2);
    const again = (await shown(overlay.page)).map((s) => s.id);
    if (again[0] !== a || again[1] !== b) throw new Error(`after reopening: ${JSON.stringify(again)} (want ${a}, ${b})`);
    console.log("closed mid-alert: shown again after reopening, then the next");

    await dash.reload({ waitUntil: "domcontentloaded" });
    await dash.locator("#recent li[data-id]").first().waitFor();
    await dash.screenshot({ path: path.join(out, "dashboard.png"), fullPage: true });
    console.log(`screenshots in ${out}`);
    assertNoCspErrors();
    console.log("nothing blocked by the CSP (dashboard, overlay)");
  } catch (e) {
    if (overlay) await overlay.page.screenshot({ path: path.join(out, "alerts-failure.png") }).catch(() => {});
    console.error(`alerts e2e failed: ${e.message}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
