// The overview and a smart link's analytics in headless Chromium: a link
// gets views and clicks from a few countries and devices through the public
// routes, then the artist signs in, lands on the overview, switches period,
// opens a chart's table, and reads the link's page. Screenshots:
// target/browser/screenshots/overview-*.png, overview-365-*.png and
// link-analytics-*.png (phone and desktop, light and dark). The server,
// the seeded fans and the checks for console errors and CSP violations come
// from harness.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { API, allowed, asciiJson, goto, heading1, launchBrowser, navigation, page, shoot, signIn } from "./harness.mjs";

// tests/e2e/fixtures.sql: the API token of e2e-artist (only its hash is stored).
const TOKEN = "sd_e2e_links_token_artist_one_3f9a";
const SLUG = "browser-analytics";
const TITLE = "Browser Analytics Single";
const UA = {
  ios: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
  android: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
  desktop: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
};
// [country, device, service or null for a landing view, referrer]
const VISITS = [
  ["SE", "ios", null, "instagram.com"],
  ["SE", "ios", "spotify", "instagram.com"],
  ["SE", "android", "spotify", ""],
  ["GB", "desktop", null, "news.example"],
  ["GB", "desktop", "deezer", "news.example"],
  ["US", "ios", "spotify", ""],
  ["US", "desktop", null, ""],
];

async function seedLink() {
  const res = await fetch(`${API}/api/v1/app/links`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({
      slug: SLUG,
      title: TITLE,
      targets: [
        { platform: "spotify", url: "https://open.spotify.com/album/browser" },
        { platform: "deezer", url: "https://www.deezer.com/album/2" },
      ],
    }),
  });
  const body = await res.text();
  assert.ok([201, 409].includes(res.status), `create link: ${res.status} ${body}`);
  for (const [country, device, service, referrer] of VISITS) {
    const ref = referrer ? `?ref=${referrer}` : "";
    const r = await fetch(`${API}/l/${SLUG}${service ? `/${service}` : ""}${ref}`, {
      redirect: "manual",
      headers: { "user-agent": UA[device], "cf-connecting-ip": "198.51.100.140", "mf-cf-blob": asciiJson({ country, clientAcceptEncoding: "" }) },
    });
    await r.arrayBuffer();
    assert.equal(r.status, service ? 302 : 200, `visit ${country} ${device} ${service}`);
  }
}

/// The number a figure (`<dt>` name, `<dd>` value) shows.
async function figure(p, name) {
  return (await p.locator("dl.figures div").filter({ has: p.getByText(name, { exact: true }) }).locator("dd").innerText()).trim();
}

test("the overview and a link's analytics, on a phone and a desktop, light and dark", { timeout: 180_000 }, async () => {
  await seedLink();
  const ctx = await launchBrowser("analytics");
  try {
    const p = await page(ctx);
    await signIn(p);
    await navigation(p, "/app/overview", () => p.goto("/app"));
    await heading1(p, "Overview");
    assert.equal(await p.getByRole("link", { name: "Overview", exact: true }).getAttribute("aria-current"), "page");
    // The seeded fans: three subscribed, two pending (other suites may add more).
    const legend = await p.locator("figure.chart").first().innerText();
    assert.match(legend, /subscribed: \d/, legend);
    assert.match(legend, /pending: \d/, legend);
    const countries = p.locator("table.bars").filter({ has: p.locator("caption", { hasText: "Top countries" }) });
    assert.match(await countries.innerText(), /SE\s+\d/);
    // Every chart is an image with a name for assistive technology.
    for (const svg of await p.locator('svg[role="img"]').all()) {
      assert.ok((await svg.locator("title").textContent())?.trim(), "an SVG chart without a <title>");
    }
    // A chart's numbers as a table, one click away.
    const details = p.locator("details", { has: p.locator("summary", { hasText: "Table of signups" }) });
    await details.locator("summary").click();
    await details.locator("table").waitFor();
    const today = new Date().toISOString().slice(0, 10);
    assert.match(await details.locator("table").innerText(), new RegExp(today), "today's signups in the table");
    await details.locator("summary").click();
    await shoot(p, "overview");

    await navigation(p, "/app/overview", () => p.getByRole("link", { name: "365 days" }).click());
    assert.equal(await p.getByRole("link", { name: "365 days" }).getAttribute("aria-current"), "page");
    await shoot(p, "overview-365");

    await goto(p, `/app/links/${SLUG}`);
    await heading1(p, TITLE);
    assert.equal(await figure(p, "Page views"), "3");
    assert.equal(await figure(p, "Clicks"), "4");
    assert.equal(await figure(p, "Click-through rate"), "133.3%");
    const services = await p.locator("table.bars", { has: p.locator("caption", { hasText: "Clicks by service" }) }).innerText();
    assert.match(services, /spotify\s+3/, services);
    assert.match(services, /deezer\s+1/, services);
    assert.equal(await p.getByRole("link", { name: "Edit" }).getAttribute("href"), `/app/links/${SLUG}/edit`);
    await shoot(p, "link-analytics");

    // A range the form refuses keeps what was typed and says why, beside the
    // field; Chromium logs the 400 answer itself as a console error.
    allowed.push(/^\[analytics\] console\.error .*status of 400/);
    await p.getByLabel("From", { exact: true }).fill("2026-03-10");
    await p.getByLabel("To", { exact: true }).fill("2026-03-01");
    await navigation(p, `/app/links/${SLUG}`, () => p.getByRole("button", { name: "Show these days" }).click());
    await p.getByRole("alert").filter({ hasText: "The last day must not come before the first." }).waitFor();
    assert.equal(await p.getByLabel("From", { exact: true }).inputValue(), "2026-03-10");
  } finally {
    await ctx.close();
  }
});
