// Capture pages from the dashboard in headless Chromium: create one through
// the form (one refused submit first, which must keep what was typed and say
// what to fix next to the field), preview the draft in the sandboxed frame,
// then see the page's details, its preview and the embed snippet.
// Screenshots: target/browser/screenshots/pages-*.png (phone and desktop,
// light and dark). The server and the checks for console errors and CSP
// violations come from harness.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { allowed, goto, heading1, launchBrowser, navigation, page, shoot, signIn } from "./harness.mjs";

const SLUG = "browser-tour";
const TITLE = "Browser tour";
const CONSENT = "Yes, email me about the browser tour & new songs.";

test("create a capture page through the form, preview it, and copy its snippet", { timeout: 180_000 }, async () => {
  const ctx = await launchBrowser("pages");
  try {
    const p = await page(ctx);
    await signIn(p);
    await goto(p, "/app/pages");
    await heading1(p, "Capture pages");
    await shoot(p, "pages-list");
    await navigation(p, "/app/pages/new", () => p.getByRole("link", { name: "New capture page" }).click());
    await heading1(p, "New capture page");

    // A refused submit: an http:// redirect. Chromium logs its 422 as a
    // console error; that one is the point of the step.
    allowed.push(/\/app\/pages\/new: Failed to load resource: the server responded with a status of 422/);
    await p.getByLabel("Address", { exact: true }).fill(SLUG);
    await p.getByLabel("Title", { exact: true }).fill(TITLE);
    await p.getByLabel("Consent text", { exact: true }).fill(CONSENT);
    await p.getByLabel("Double opt-in", { exact: true }).check();
    const redirect = p.getByLabel("Send fans here after signing up (optional)", { exact: true });
    await redirect.fill("http://shop.example.com/thanks");
    await navigation(p, "/app/pages/new", () => p.getByRole("button", { name: "Create the page" }).click());
    await heading1(p, "New capture page");
    assert.equal(await p.getByLabel("Address", { exact: true }).inputValue(), SLUG);
    assert.equal(await p.getByLabel("Title", { exact: true }).inputValue(), TITLE);
    assert.equal(await p.getByLabel("Consent text", { exact: true }).inputValue(), CONSENT);
    assert.ok(await p.getByLabel("Double opt-in", { exact: true }).isChecked(), "the box stays ticked");
    assert.equal(await redirect.inputValue(), "http://shop.example.com/thanks");
    assert.equal(await redirect.getAttribute("aria-invalid"), "true");
    const why = p.locator("#err-redirect_url");
    assert.match(await why.innerText(), /must start with https:\/\//);
    assert.match((await redirect.getAttribute("aria-describedby")) ?? "", /\berr-redirect_url\b/);
    await shoot(p, "pages-refused");

    // The draft in the preview frame, rendered as the public page is.
    await redirect.fill("https://shop.example.com/thanks");
    const frame = p.frameLocator('iframe[name="preview"]');
    await p.getByRole("button", { name: "Preview", exact: true }).click();
    await frame.getByRole("heading", { level: 1, name: TITLE }).waitFor();
    assert.equal(new URL(p.url()).pathname, "/app/pages/new", "the form stays as typed");
    assert.match(await frame.locator(".consent").innerText(), /browser tour & new songs/);
    await shoot(p, "pages-preview");

    const created = p.waitForURL((u) => /^\/app\/pages\/[^/]+$/.test(u.pathname) && u.pathname !== "/app/pages/new");
    await p.getByRole("button", { name: "Create the page" }).click();
    await created;
    await heading1(p, TITLE);
    await p.getByRole("status").filter({ hasText: "Created" }).waitFor();
    const snippet = await p.locator("pre.snippet code").innerText();
    for (const part of [`page: "${SLUG}"`, "/api/v1/signup", 'name="consent"', 'name="website"', "browser tour &amp; new songs"]) {
      assert.ok(snippet.includes(part), `snippet lacks ${part}:\n${snippet}`);
    }
    await p.frameLocator('iframe[name="preview"]').getByRole("heading", { level: 1, name: TITLE }).waitFor();
    await shoot(p, "pages-detail");

    // The page is live at its address.
    const res = await goto(p, `/s/${SLUG}`);
    assert.equal(res.status(), 200);
    await p.getByRole("heading", { level: 1, name: TITLE }).waitFor();
  } finally {
    await ctx.close().catch(() => {});
  }
});
