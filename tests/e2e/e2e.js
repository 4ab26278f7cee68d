// The browser test: sign in through the fake Twitch, pick teststreamer, see the
// subscriptions created on the fake, post a signed notification and wait for
// its sentence in #feed; saves a screenshot to out/.
//
//   node e2e.js BASE_URL FAKE_URL EVENTSUB_SECRET
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const [base, fake, secret] = process.argv.slice(2);
const out = path.join(__dirname, "out");
const TIMEOUT = 15000;

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

async function until(what, check) {
  const deadline = Date.now() + TIMEOUT;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function postFollow(follower) {
  const body = JSON.stringify({
    subscription: {
      id: crypto.randomUUID(), status: "enabled", type: "channel.follow", version: "2",
      condition: { broadcaster_user_id: "1001", moderator_user_id: "1001" },
      transport: { method: "webhook", callback: `${base}/api/callback` },
      created_at: new Date().toISOString(), cost: 0,
    },
    event: {
      user_id: "3003", user_login: follower.toLowerCase(), user_name: follower,
      broadcaster_user_id: "1001", broadcaster_user_login: "teststreamer", broadcaster_user_name: "TestStreamer",
      followed_at: new Date().toISOString(),
    },
  });
  const id = crypto.randomUUID();
  const ts = new Date().toISOString();
  const sig = "sha256=" + crypto.createHmac("sha256", secret).update(id + ts + body).digest("hex");
  const r = await fetch(`${base}/api/callback`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "Twitch-Eventsub-Message-Id": id, "Twitch-Eventsub-Message-Timestamp": ts,
      "Twitch-Eventsub-Message-Signature": sig, "Twitch-Eventsub-Message-Type": "notification",
      "Twitch-Eventsub-Subscription-Type": "channel.follow", "Twitch-Eventsub-Subscription-Version": "2",
      "Twitch-Eventsub-Message-Retry": "0",
    },
    body,
  });
  if (r.status !== 204) throw new Error(`notification answered ${r.status}: ${await r.text()}`);
  return `${follower} followed TestStreamer`;
}

(async () => {
  fs.mkdirSync(out, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(TIMEOUT);
  watchCsp(page);
  // No internet here: the Twitch player and chat iframes are answered empty.
  await page.route(/^https:\/\/(player|www)\.twitch\.tv\//, (route) =>
    route.fulfill({ status: 200, contentType: "text/html", body: "<!doctype html><title>embed</title>" }));
  try {
    await page.goto(`${base}/`, { waitUntil: "domcontentloaded" });
    await page.getByRole("link", { name: "Log in with Twitch" }).click();
    await page.waitForURL(`${base}/`);
    await page.getByText("Pick a streamer").waitFor();
    console.log("signed in through the fake Twitch");

    await page.getByLabel("Twitch login").fill("teststreamer");
    await page.getByRole("button", { name: "Watch" }).press("Enter");
    await page.waitForURL(`${base}/watch/teststreamer`);
    await page.locator("#state.live").waitFor();
    console.log("watch page is live");

    await until("4 subscriptions on the fake Twitch", async () => {
      const subs = await (await fetch(`${fake}/_fake/subscriptions`)).json();
      return subs.length === 4 && subs.every((s) => s.transport.callback === `${base}/api/callback`);
    });
    console.log("subscriptions created on the fake Twitch");

    const sentence = await postFollow("E2EViewer");
    await page.locator("#feed li", { hasText: sentence }).first().waitFor();
    console.log(`feed shows: ${sentence}`);
    await page.screenshot({ path: path.join(out, "watch.png"), fullPage: true });
    // The same page on a phone-sized screen: one column, feed still visible.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator("#feed li", { hasText: sentence }).first().scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(out, "watch-phone.png"), fullPage: true });
    console.log(`screenshots: ${path.join(out, "watch.png")}, watch-phone.png`);
    assertNoCspErrors();
    console.log("nothing blocked by the CSP (home, watch with the Twitch frames)");
  } catch (e) {
    await page.screenshot({ path: path.join(out, "failure.png"), fullPage: true }).catch(() => {});
    console.error(`e2e failed: ${e.message}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
