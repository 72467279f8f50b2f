// The public capture page /s/{slug} in headless Chromium: plain, with the
// artist's image, colours and message, and with a light theme; a fan signs
// up giving a first name through the form. Screenshots (full page, phone
// 390×844 and desktop 1280×900, light and dark):
// target/browser/screenshots/capture-look-<variant>-<phone|desktop>-<light|dark>.png.
// The server and the check for console errors and CSP violations come from
// harness.mjs. Pages and looks are written straight into the local D1 file
// (the dashboard's form for looks comes later), with the sqlite3 shell; the
// image's host is answered by the browser itself (the machine has no
// network), with a picture drawn here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { OUT, SCHEMES, SHOTS, launchBrowser, page } from "./harness.mjs";

const VIEWPORTS = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 900 } };
const IMG_HOST = "https://img.browser.example";

// A stand-in band photo: a stage, three silhouettes, warm lights.
const PHOTO = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 640 640">
<defs><radialGradient id="l" cx=".5" cy=".25" r=".8"><stop offset="0" stop-color="#fbbf24"/><stop offset=".45" stop-color="#be185d"/><stop offset="1" stop-color="#1e1b4b"/></radialGradient></defs>
<rect width="640" height="640" fill="url(#l)"/><rect y="520" width="640" height="120" fill="#0f0a1e"/>
<g fill="#0f0a1e"><circle cx="190" cy="330" r="42"/><rect x="150" y="370" width="80" height="160" rx="30"/>
<circle cx="320" cy="300" r="48"/><rect x="274" y="345" width="92" height="185" rx="34"/>
<circle cx="450" cy="335" r="40"/><rect x="412" y="372" width="76" height="158" rx="28"/></g></svg>`;

// variant → the page's slug, title and look (null: the plain page).
const PAGES = {
  plain: { slug: "browser-look-plain", title: "Tour news", look: null },
  image: {
    slug: "browser-look-image",
    title: "Night Drive pre-sale",
    look: { image: `${IMG_HOST}/band.svg`, background: "#1e1b4b", button: "#facc15", message: "New album in May. Sign up and hear it first, a week before everyone else.", ask: 1 },
  },
  theme: {
    slug: "browser-look-theme",
    title: "Summer Tapes",
    look: { image: null, background: "#fef3c7", button: "#b91c1c", message: "Four songs recorded on a porch in July.", ask: 1 },
  },
};

function sqlString(s) {
  return s === null || s === undefined ? "NULL" : `'${String(s).replaceAll("'", "''")}'`;
}

/// The local D1 database file of this session (harness.mjs keeps its state in target/browser/state).
function d1File() {
  const dir = join(OUT, "state/v3/d1/miniflare-D1DatabaseObject");
  const file = readdirSync(dir).find((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite");
  assert.ok(file, `no D1 database in ${dir}`);
  return join(dir, file);
}

function sql(statements) {
  const r = spawnSync("sqlite3", ["-bail", d1File()], { input: `.timeout 5000\n${statements}`, encoding: "utf8" });
  assert.equal(r.status, 0, `sqlite3: ${r.stderr}`);
  return r.stdout.trim();
}

function seedPages() {
  let s = "";
  for (const { slug, title, look } of Object.values(PAGES)) {
    s += `INSERT OR IGNORE INTO capture_pages (id, artist_id, slug, title, consent_text, consent_version, double_opt_in, created_at, updated_at)
      VALUES ('${slug}', 'e2e-artist', '${slug}', ${sqlString(title)}, 'Email me news and pre-sale codes from E2E Band.', 'v1', 0, 0, 0);\n`;
    if (look) {
      s += `INSERT OR REPLACE INTO capture_page_looks (page_id, artist_id, artist_image_url, background, button, message, ask_first_name, updated_at)
        VALUES ('${slug}', 'e2e-artist', ${sqlString(look.image)}, ${sqlString(look.background)}, ${sqlString(look.button)}, ${sqlString(look.message)}, ${look.ask}, 0);\n`;
    }
  }
  sql(s);
}

async function shootPage(p, variant) {
  for (const [vp, size] of Object.entries(VIEWPORTS)) {
    for (const scheme of SCHEMES) {
      await p.setViewportSize(size);
      await p.emulateMedia({ colorScheme: scheme });
      await p.screenshot({ path: join(SHOTS, `capture-look-${variant}-${vp}-${scheme}.png`), fullPage: true });
    }
  }
  await p.emulateMedia({ colorScheme: "light" });
}

test("the capture page: the artist's image, colours and message, light and dark, and a signup with a first name", { timeout: 180_000 }, async () => {
  seedPages();
  const ctx = await launchBrowser("capture-look");
  try {
    await ctx.route(`${IMG_HOST}/**`, (route) => route.fulfill({ status: 200, contentType: "image/svg+xml", body: PHOTO }));
    const p = await page(ctx);
    for (const [variant, def] of Object.entries(PAGES)) {
      const res = await p.goto(`/s/${def.slug}`);
      assert.equal(res.status(), 200, variant);
      await p.getByRole("heading", { level: 1, name: def.title, exact: true }).waitFor();
      assert.ok(await p.getByText("We do not keep your IP address", { exact: false }).isVisible(), `${variant}: the location notice`);
      const hero = p.locator("img.hero");
      if (def.look?.image) {
        await hero.waitFor();
        assert.ok(await hero.evaluate((img) => img.complete && img.naturalWidth > 0), `${variant}: image not shown`);
        assert.equal(await hero.getAttribute("alt"), "E2E Band");
      } else {
        assert.equal(await hero.count(), 0, variant);
      }
      assert.equal(await p.getByLabel("First name (optional)").count(), def.look?.ask ? 1 : 0, `${variant}: first-name field`);
      if (def.look?.background) {
        const bg = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
        const rgb = def.look.background.match(/[0-9a-f]{2}/g).map((h) => parseInt(h, 16));
        assert.equal(bg, `rgb(${rgb.join(", ")})`, `${variant}: the artist's background`);
        // Dark mode keeps the artist's colours: the look is the look.
        await p.emulateMedia({ colorScheme: "dark" });
        assert.equal(await p.evaluate(() => getComputedStyle(document.body).backgroundColor), `rgb(${rgb.join(", ")})`, `${variant}: dark mode`);
        await p.emulateMedia({ colorScheme: "light" });
      }
      await shootPage(p, variant);
    }

    // A signup with a first name, through the form.
    await p.goto(`/s/${PAGES.image.slug}`);
    await p.getByLabel("First name (optional)").fill("Marisol");
    await p.getByLabel("Email address").fill("marisol.browser@example.com");
    await p.getByRole("checkbox").check();
    await p.getByRole("button", { name: "Sign up" }).click();
    await p.getByRole("status").waitFor();
    assert.match(await p.getByRole("status").innerText(), /on E2E Band's list/);
    const stored = sql(`SELECT count(*) FROM fan_names n JOIN fans f ON f.id = n.fan_id WHERE f.artist_id = 'e2e-artist' AND n.name_enc LIKE 'k1.%';
      SELECT count(*) FROM fan_names WHERE name_enc LIKE '%Marisol%';`).split("\n");
    assert.ok(Number(stored[0]) >= 1, `a stored, encrypted name: ${stored}`);
    assert.equal(stored[1], "0", "the name in plain text");

    // The QR code renders as an image.
    const qr = await p.goto(`/s/${PAGES.image.slug}/qr.svg`);
    assert.equal(qr.status(), 200);
    assert.equal(qr.headers()["content-type"], "image/svg+xml");
    await p.setViewportSize(VIEWPORTS.desktop);
    await p.screenshot({ path: join(SHOTS, "capture-look-qr.png") });
  } finally {
    await ctx.close();
  }
});
