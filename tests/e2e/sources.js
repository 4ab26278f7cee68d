// The dashboard's alert sources in Twitch mode (SPEC §8), webhook transport,
// against the fake Twitch. teststreamer signs in: the grant is missing and
// "Connect alerts" is offered; the button takes them through the fake's
// consent and back to the dashboard, which then shows the grant connected
// and every alert kind's subscription enabled. Twitch then withdraws the
// grant (the fake drops its tokens and subscriptions; this test sends the
// signed `authorization_revoked` messages Twitch would): the dashboard says
// the grant is revoked and needs a reconnect, and connecting again brings
// every source back. With `websocket` (a bridge on EventSub's WebSocket
// transport against the fake's socket) the page also shows the socket:
// connected, no reconnects, a recent last message; Twitch's revocations
// then come over the socket. Saves a screenshot to out/ (not committed).
//
//   node sources.js BASE_URL FAKE_URL EVENTSUB_SECRET [webhook|websocket]
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const [base, fake, secret, transport = "webhook"] = process.argv.slice(2);
const onSocket = transport === "websocket";
const out = path.join(__dirname, "out");
const TIMEOUT = 20000;
const KINDS = ["follow", "subscribe", "resub", "gift", "cheer", "raid", "redemption", "hype_train"];

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

// The status pill of each alert kind's row, as the page shows it.
async function sourceStates(page) {
  const out = {};
  for (const row of await page.locator("#source-rows tr[data-kind]").all()) {
    out[await row.getAttribute("data-kind")] = await row.locator(".state").textContent();
  }
  return out;
}

function allSources(states, label, except) {
  return KINDS.every((k) => k === except || states[k] === label) || states;
}

// A signed revocation message, as Twitch sends one per removed subscription.
async function postRevocation(sub) {
  const body = JSON.stringify({ subscription: sub });
  const id = crypto.randomUUID();
  const ts = new Date().toISOString();
  const sig = "sha256=" + crypto.createHmac("sha256", secret).update(id + ts + body).digest("hex");
  const r = await fetch(`${base}/api/callback`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "Twitch-Eventsub-Message-Id": id, "Twitch-Eventsub-Message-Timestamp": ts,
      "Twitch-Eventsub-Message-Signature": sig, "Twitch-Eventsub-Message-Type": "revocation",
      "Twitch-Eventsub-Subscription-Type": sub.type, "Twitch-Eventsub-Subscription-Version": sub.version,
      "Twitch-Eventsub-Message-Retry": "0",
    },
    body,
  });
  if (r.status !== 204) throw new Error(`revocation answered ${r.status}: ${await r.text()}`);
}

async function fakePost(what) {
  const r = await fetch(`${fake}${what}`, { method: "POST" });
  if (!r.ok) throw new Error(`fake ${what} answered ${r.status}`);
  return r.json();
}

(async () => {
  fs.mkdirSync(out, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(TIMEOUT);
  try {
    await fakePost("/_fake/login-as?login=teststreamer");
    await page.goto(`${base}/`, { waitUntil: "domcontentloaded" });
    await page.getByRole("link", { name: "Log in with Twitch" }).click();
    await page.waitForURL(`${base}/`);
    await page.goto(`${base}/dashboard`, { waitUntil: "domcontentloaded" });
    const grant = page.locator("#grant-state");
    await until("the grant shown as missing", async () => (await grant.textContent()) === "missing" || await grant.textContent());
    const connect = page.getByRole("link", { name: "Connect alerts" });
    if ((await connect.getAttribute("href")) !== "/auth/connect") throw new Error("Connect alerts does not go to /auth/connect");
    // Not the raid: e2e.js watched teststreamer, which subscribed raids to
    // the channel with the app token, no grant needed.
    await until("every source but the raid not connected", async () =>
      allSources(await sourceStates(page), "not connected", "raid"));
    console.log("dashboard: grant missing, Connect alerts offered, sources not connected");

    await connect.click();
    await page.waitForURL(/\/dashboard/);
    await until("the grant connected", async () => (await grant.textContent()) === "connected" || await grant.textContent());
    await until("every source enabled", async () => allSources(await sourceStates(page), "enabled"));
    const shown = await page.locator("#transport").textContent();
    if (!new RegExp(onSocket ? "WebSocket" : "webhook").test(shown)) throw new Error(`transport shown as ${shown}`);
    const socketBox = page.locator("#eventsub-socket");
    if (onSocket) {
      await socketBox.waitFor();
      await until("the socket connected", async () => (await page.locator("#socket-state").textContent()) === "connected");
      const reconnects = await page.locator("#socket-reconnects").textContent();
      if (reconnects !== "0") throw new Error(`reconnects: ${reconnects}`);
      await until("a recent last message", async () =>
        /^\d+ s ago$/.test(await page.locator("#socket-last-message").textContent()) ||
        await page.locator("#socket-last-message").textContent());
      console.log(`dashboard: socket connected, last message ${await page.locator("#socket-last-message").textContent()}`);
    } else if (!(await socketBox.isHidden())) {
      throw new Error("socket state shown on the webhook transport");
    }
    await page.screenshot({ path: path.join(out, `dashboard-sources-${transport}.png`), fullPage: true });
    console.log(`dashboard (${transport}): connected, every alert kind's subscription enabled`);

    // Twitch revokes a socket's subscriptions over the socket; a webhook's
    // come as signed POSTs, sent here.
    const removed = await fakePost("/_fake/revoke?user_id=1001");
    if (!onSocket && !removed.length) throw new Error("the fake had no subscription of teststreamer to revoke");
    if (!onSocket) for (const sub of removed) await postRevocation(sub);
    await until("the grant shown as revoked", async () =>
      (await grant.textContent()) === "revoked: needs reconnect" || await grant.textContent());
    const detail = await page.locator("#grant-detail").textContent();
    if (!/authorization_revoked/.test(detail) || !/Connect alerts again/.test(detail)) throw new Error(`grant detail: ${detail}`);
    if (!(await connect.isVisible())) throw new Error("no Connect alerts button after the revocation");
    const states = await sourceStates(page);
    if (states.follow !== "revoked") throw new Error(`follow after the revocation: ${JSON.stringify(states)}`);
    if (onSocket) {
      await until("the socket no longer connected", async () =>
        (await page.locator("#socket-state").textContent()) !== "connected");
    }
    console.log(`dashboard: grant revoked (${detail}); sources ${JSON.stringify(states)}`);

    await connect.click();
    await page.waitForURL(/\/dashboard/);
    await until("the grant connected again", async () => (await grant.textContent()) === "connected" || await grant.textContent());
    await until("every source enabled again", async () => allSources(await sourceStates(page), "enabled"));
    console.log("dashboard: connected again, every source enabled");
  } catch (e) {
    await page.screenshot({ path: path.join(out, "sources-failure.png"), fullPage: true }).catch(() => {});
    console.error(`sources e2e failed: ${e.message}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
