// The public smart-link page /l/{slug} in headless Chromium: with and
// without artwork, with the artist's colours, the remembered service
// highlighted, and its QR code. Screenshots (full page, phone 390×844 and
// desktop 1280×900, light and dark):
// target/browser/screenshots/link-page-<variant>-<phone|desktop>-<light|dark>.png.
// The server and the check for console errors and CSP violations come from
// harness.mjs; the artwork's host is answered by the browser itself (the
// machine has no network), with a picture drawn here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { API, SCHEMES, SHOTS, launchBrowser, page } from "./harness.mjs";

// Artist one's links API token (tests/e2e/fixtures.sql stores its hash).
const TOKEN = "sd_e2e_links_token_artist_one_3f9a";
const VIEWPORTS = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 900 } };
const ART_HOST = "https://art.browser.example";

// A stand-in record sleeve: dusk gradient, a sun, three hills.
const ARTWORK = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 600 600">
<defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#1e1b4b"/><stop offset=".55" stop-color="#be185d"/><stop offset="1" stop-color="#f59e0b"/></linearGradient></defs>
<rect width="600" height="600" fill="url(#sky)"/><circle cx="300" cy="330" r="120" fill="#fde68a"/>
<path d="M0 430 Q150 330 300 430 T600 420 V600 H0Z" fill="#312e81"/><path d="M0 500 Q200 420 380 500 T600 490 V600 H0Z" fill="#1e1b4b"/>
<text x="40" y="80" font-family="sans-serif" font-size="44" font-weight="700" fill="#fff">NIGHT DRIVE</text></svg>`;

const TARGETS = [
  { platform: "spotify", url: "https://open.spotify.com/album/4aawyAB9vmqN3uQ7FjRGTy" },
  { platform: "apple-music", url: "https://music.apple.com/us/album/night-drive/1" },
  { platform: "youtube-music", url: "https://music.youtube.com/playlist?list=OLAK5" },
  { platform: "deezer", url: "https://www.deezer.com/album/1" },
  { platform: "tidal", url: "https://tidal.com/album/9" },
  { platform: "amazon-music", url: "https://music.amazon.com/albums/B0" },
  { platform: "soundcloud", url: "https://soundcloud.com/nova/night-drive" },
  { platform: "bandcamp", url: "https://nova.bandcamp.com/album/night-drive" },
  { platform: "other", label: "Signed vinyl", url: "https://shop.example.com/nd" },
];

const LINKS = {
  artwork: { slug: "browser-link-art", title: "Night Drive", artwork_url: `${ART_HOST}/night-drive.svg`, targets: TARGETS },
  plain: { slug: "browser-link-plain", title: "Night Drive (Demos)", targets: TARGETS.slice(0, 4) },
  theme: {
    slug: "browser-link-theme",
    title: "Night Drive",
    artwork_url: `${ART_HOST}/night-drive.svg`,
    theme: { background: "#1e1b4b", button: "#facc15" },
    targets: TARGETS,
  },
  "light-theme": {
    slug: "browser-link-light",
    title: "Summer Tapes",
    theme: { background: "#fef3c7", button: "#b91c1c" },
    targets: TARGETS.slice(0, 5),
  },
};

async function createLink(def) {
  const res = await fetch(`${API}/api/v1/app/links`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(def),
  });
  const body = await res.text();
  assert.ok([201, 409].includes(res.status), `create ${def.slug}: ${res.status} ${body}`);
}

async function shootLink(p, variant) {
  for (const [vp, size] of Object.entries(VIEWPORTS)) {
    for (const scheme of SCHEMES) {
      await p.setViewportSize(size);
      await p.emulateMedia({ colorScheme: scheme });
      await p.screenshot({ path: join(SHOTS, `link-page-${variant}-${vp}-${scheme}.png`), fullPage: true });
    }
  }
  await p.emulateMedia({ colorScheme: "light" });
}

test("the smart-link page: artwork, marks, the artist's colours, light and dark, the remembered service, the QR code", { timeout: 180_000 }, async () => {
  for (const def of Object.values(LINKS)) await createLink(def);
  const ctx = await launchBrowser("link-page");
  try {
    await ctx.route(`${ART_HOST}/**`, (route) => route.fulfill({ status: 200, contentType: "image/svg+xml", body: ARTWORK }));
    const p = await page(ctx);
    for (const [variant, def] of Object.entries(LINKS)) {
      const res = await p.goto(`/l/${def.slug}`);
      assert.equal(res.status(), 200, variant);
      await p.getByRole("heading", { level: 1, name: def.title, exact: true }).waitFor();
      const buttons = p.getByRole("navigation", { name: "Listen on" }).getByRole("link");
      assert.equal(await buttons.count(), def.targets.length, variant);
      // Every button shows its mark, drawn (not an empty box).
      for (const box of await p.locator("nav a svg").evaluateAll((svgs) => svgs.map((s) => s.getBoundingClientRect().width))) {
        assert.ok(box > 20, `${variant}: a mark ${box}px wide`);
      }
      const art = p.locator("img.art");
      if (def.artwork_url) {
        await art.waitFor();
        assert.ok(await art.evaluate((img) => img.complete && img.naturalWidth > 0), `${variant}: artwork not shown`);
      } else {
        assert.equal(await art.count(), 0, variant);
      }
      if (def.theme) {
        const bg = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
        const hex = def.theme.background.match(/[0-9a-f]{2}/g).map((h) => parseInt(h, 16));
        assert.equal(bg, `rgb(${hex.join(", ")})`, `${variant}: the artist's background`);
      }
      await shootLink(p, variant);
    }

    // The service picked last time comes first, highlighted.
    const { origin } = new URL(p.url());
    await ctx.addCookies([{ name: "sd_svc", value: "tidal", url: `${origin}/l/` }]);
    await p.goto(`/l/${LINKS.theme.slug}`);
    const first = p.getByRole("navigation", { name: "Listen on" }).getByRole("link").first();
    assert.match(await first.innerText(), /TIDAL/);
    assert.equal(await first.getAttribute("class"), "on");
    assert.match(await first.getAttribute("href"), /\/tidal$/);
    await shootLink(p, "remembered");
    await p.goto(`/l/${LINKS.artwork.slug}`);
    await shootLink(p, "remembered-plain");

    // The QR code: an SVG image the browser renders, sized for print.
    const qr = await p.goto(`/l/${LINKS.artwork.slug}/qr.svg`);
    assert.equal(qr.status(), 200);
    assert.equal(qr.headers()["content-type"], "image/svg+xml");
    await p.setViewportSize(VIEWPORTS.desktop);
    await p.screenshot({ path: join(SHOTS, "link-page-qr.png") });
  } finally {
    await ctx.close();
  }
});
