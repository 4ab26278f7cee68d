// The rooms browser test (SPEC §9): the streamer on /rooms/teststreamer and
// two signed-in viewers (two browser contexts) on /watch/teststreamer. The
// streamer starts a poll; both viewers vote on the watch page; all three
// see the same tallies; the viewer count goes 3 → 2 when one viewer closes
// the page. Saves screenshots to out/.
//
//   node rooms.js BASE_URL        (a server in local mode)
"use strict";
const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const [base] = process.argv.slice(2);
const out = path.join(__dirname, "out");
const TIMEOUT = 15000;

async function signedIn(browser, login) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  // No internet here: the Twitch player and chat iframes are answered empty.
  await page.route(/^https:\/\/(player|www)\.twitch\.tv\//, (route) =>
    route.fulfill({ status: 200, contentType: "text/html", body: "<!doctype html><title>embed</title>" }));
  const r = await page.request.post(`${base}/auth/local`, { form: { login }, maxRedirects: 0 });
  if (r.status() !== 302) throw new Error(`local sign-in as ${login} answered ${r.status()}`);
  return { context, page };
}

// The tallies a page shows for its first poll: {answer: votes}.
async function tallies(page) {
  return page.locator(".room-poll").first().evaluate((poll) => {
    const t = {};
    poll.querySelectorAll("li.answer").forEach((li) => {
      t[li.getAttribute("data-answer")] = Number(li.querySelector(".votes").textContent);
    });
    return t;
  });
}

async function until(what, check) {
  const deadline = Date.now() + TIMEOUT;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last === true) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

(async () => {
  fs.mkdirSync(out, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const pages = [];
  try {
    const streamer = await signedIn(browser, "teststreamer");
    const ann = await signedIn(browser, "ann");
    const bob = await signedIn(browser, "bob");
    pages.push(streamer.page, ann.page, bob.page);

    // The streamer finds the room from the dashboard.
    await streamer.page.goto(`${base}/dashboard`);
    await streamer.page.getByRole("link", { name: "Open your room" }).click();
    await streamer.page.waitForURL(`${base}/rooms/teststreamer`);
    await streamer.page.locator("#room-state.live").waitFor();
    for (const v of [ann, bob]) await v.page.goto(`${base}/watch/teststreamer`);
    for (const p of pages) {
      await p.locator("#room-count", { hasText: "3" }).waitFor();
    }
    console.log("three in the room: every page counts 3");

    await streamer.page.getByLabel("Question").fill("Which color next?");
    await streamer.page.getByLabel("Answers, one per line").fill("Red\nBlue");
    await streamer.page.getByRole("button", { name: "Start poll" }).click();
    for (const v of [ann, bob]) {
      await v.page.locator(".room-poll h3", { hasText: "Which color next?" }).waitFor();
    }
    console.log("both viewers see the poll");

    await ann.page.locator(".room-poll li.answer button", { hasText: "Red" }).click();
    await bob.page.locator(".room-poll li.answer button", { hasText: "Blue" }).click();
    // Ann changes her mind: one vote per viewer, moved.
    await ann.page.locator(".room-poll li.answer button", { hasText: "Blue" }).click();
    const want = JSON.stringify({ Red: 0, Blue: 2 });
    for (const p of pages) {
      await until(`${want} on every page`, async () => {
        const t = JSON.stringify(await tallies(p));
        return t === want ? true : t;
      });
    }
    console.log(`all three see ${want}`);
    await streamer.page.screenshot({ path: path.join(out, "room-streamer.png"), fullPage: true });
    await ann.page.screenshot({ path: path.join(out, "room-viewer.png"), fullPage: true });

    await bob.page.close();
    for (const p of [streamer.page, ann.page]) {
      await p.locator("#room-count", { hasText: "2" }).waitFor();
    }
    console.log("one viewer left: the count is 2");
  } catch (e) {
    for (const [i, p] of pages.entries()) {
      if (!p.isClosed()) await p.screenshot({ path: path.join(out, `room-failure-${i}.png`), fullPage: true }).catch(() => {});
    }
    console.error(`rooms e2e failed: ${e.message}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
