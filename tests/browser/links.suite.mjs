// Smart links from the dashboard in headless Chromium: create one through
// the form (one refused submit first — a Spotify service pointed at another
// host —, which must keep what was typed and say what to fix next to the
// field), then open it on /l/{slug} and edit it again.
// Screenshots: target/browser/screenshots/link-editor-*.png (phone and
// desktop, light and dark). The server and the checks for console errors and
// CSP violations come from harness.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { allowed, choose, goto, heading1, launchBrowser, navigation, page, shoot, signIn } from "./harness.mjs";

const SLUG = "browser-single";
const TITLE = "Browser Single";

test("create a smart link through the form, then open it", { timeout: 180_000 }, async () => {
  const ctx = await launchBrowser("links");
  try {
    const p = await page(ctx);
    await signIn(p);
    await goto(p, "/app/links");
    await heading1(p, "Smart links");
    await shoot(p, "link-editor-list");
    await navigation(p, "/app/links/new", () => p.getByRole("link", { name: "New smart link" }).click());
    await heading1(p, "New smart link");

    // A refused submit: Spotify's row points at YouTube. Chromium logs the
    // 422 that carries the form back; that one is expected.
    allowed.push(/\/app\/links\/new: Failed to load resource: the server responded with a status of 422/);
    await p.getByLabel("Link address", { exact: true }).fill(SLUG);
    await p.getByLabel("Title", { exact: true }).fill(TITLE);
    await p.getByLabel("Auto-redirect", { exact: true }).check();
    const row1 = p.getByRole("group", { name: "Service 1", exact: true });
    const row2 = p.getByRole("group", { name: "Service 2", exact: true });
    await choose(row1.getByLabel("Service", { exact: true }), "spotify");
    const url1 = row1.getByLabel("Address", { exact: true });
    await url1.fill("https://www.youtube.com/watch?v=browser");
    await choose(row2.getByLabel("Service", { exact: true }), "bandcamp");
    await row2.getByLabel("Address", { exact: true }).fill("https://browser.bandcamp.com/album/single");
    await navigation(p, "/app/links/new", () => p.getByRole("button", { name: "Create the link" }).click());
    await heading1(p, "New smart link");
    assert.equal(await p.getByLabel("Link address", { exact: true }).inputValue(), SLUG);
    assert.equal(await p.getByLabel("Title", { exact: true }).inputValue(), TITLE);
    assert.ok(await p.getByLabel("Auto-redirect", { exact: true }).isChecked(), "the box stays ticked");
    assert.equal(await url1.inputValue(), "https://www.youtube.com/watch?v=browser");
    assert.equal(await row2.getByLabel("Address", { exact: true }).inputValue(), "https://browser.bandcamp.com/album/single");
    assert.equal(await row1.getByLabel("Service", { exact: true }).inputValue(), "spotify");
    assert.equal(await url1.getAttribute("aria-invalid"), "true");
    assert.match((await url1.getAttribute("aria-describedby")) ?? "", /\berr-t0-url\b/);
    assert.match(await p.locator("#err-t0-url").innerText(), /spotify\.com/);
    await shoot(p, "link-editor-refused");

    await url1.fill("https://open.spotify.com/album/browser");
    const saved = p.waitForURL((u) => u.pathname === `/app/links/${SLUG}`);
    await p.getByRole("button", { name: "Create the link" }).click();
    await saved;
    assert.equal(new URL(p.url()).searchParams.get("saved"), "created");
    await shoot(p, "link-editor-saved");

    // Live at its address, with both services.
    const res = await goto(p, `/l/${SLUG}`);
    assert.equal(res.status(), 200);
    await p.getByRole("heading", { level: 1, name: TITLE }).waitFor();
    const hrefs = await p.locator("a[href]").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
    for (const platform of ["spotify", "bandcamp"]) {
      assert.ok(hrefs.some((h) => h.includes(`/l/${SLUG}/${platform}`)), `no ${platform} button in ${JSON.stringify(hrefs)}`);
    }

    // The edit form shows what was saved.
    await goto(p, `/app/links/${SLUG}/edit`);
    await heading1(p, `Edit /l/${SLUG}`);
    assert.equal(await p.getByRole("group", { name: "Service 1", exact: true }).getByLabel("Address", { exact: true }).inputValue(), "https://open.spotify.com/album/browser");
    await shoot(p, "link-editor-edit");
  } finally {
    await ctx.close().catch(() => {});
  }
});
