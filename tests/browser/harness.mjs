// The shared harness of the browser suites (tests/browser/*.suite.mjs, run
// together by all.test.mjs so one `wrangler dev` serves them all): a
// stand-in mail provider, every Worker under `wrangler dev` with fresh state
// in target/browser/, a handful of fans seeded through the public signup
// API, headless Chromium, and the per-test check that no console error,
// page error or CSP violation happened. It stops everything it started.
// Screenshots: target/browser/screenshots/.
//
// A suite imports what it needs; the hooks below are registered once per
// process, by whichever suite imports this module first.
import { after, afterEach, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const OUT = join(ROOT, "target/browser");
export const SHOTS = join(OUT, "screenshots");
const CHROMIUM = "/usr/bin/chromium";
const WRANGLER = join(ROOT, "node_modules/.bin/wrangler");

// The suite's keys, the same as tests/e2e/runtime.rs (never a developer's).
const DATA_KEYS = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const INDEX_KEY = "HxAeHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";
const TOKEN_KEYS = "t2:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=,t1:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

export const OWNER = "owner@e2e.example"; // owner of e2e-artist (tests/e2e/fixtures.sql)

// Linköping's edge metadata, as workerd's local `mf-cf-blob` override. The
// JSON escapes keep the header ASCII; the Worker sees "Linköping".
export const SWEDEN = asciiJson({ country: "SE", region: "Östergötland County", city: "Linköping", clientAcceptEncoding: "" });

// Fans seeded through POST /api/v1/signup. `e2e` subscribes at once,
// `e2e-doi` (double opt-in) leaves the fan pending. Without `cf` the fan gets
// the local runtime's default location (not SE).
export const FANS = [
  { email: "ana.browser@example.com", page: "e2e", ip: "198.51.100.101", cf: SWEDEN, status: "subscribed", country: "SE" },
  { email: "bo.browser@example.com", page: "e2e", ip: "198.51.100.102", cf: SWEDEN, status: "subscribed", country: "SE" },
  { email: "chloe.browser@example.com", page: "e2e", ip: "198.51.100.103", status: "subscribed" },
  { email: "dmitri.browser@example.com", page: "e2e-doi", ip: "198.51.100.104", cf: SWEDEN, status: "pending", country: "SE" },
  { email: "emil.browser@example.com", page: "e2e-doi", ip: "198.51.100.105", status: "pending" },
];

export const VIEWPORTS = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 800 } };
export const SCHEMES = ["light", "dark"];

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // --user-data-dir: given as launchPersistentContext's first argument
  // (playwright refuses it in `args`).
];

export let mail; // { url, requests: [{ path, headers, body, json }], close() }
let wrangler; // ChildProcess, leader of its own process group
let port;
export let BASE; // the browser's origin: http://localhost:<port>
export let API; // the same server for node's own requests
export let browser; // persistent context of the main browser
const tmpDirs = [];
export const seeded = [];

// Console errors, page errors and CSP violations, per test.
export let problems = [];
export let allowed = [];

export function asciiJson(value) {
  return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function wranglerEnv() {
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_SEND_ERROR_REPORTS: "false",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    XDG_CONFIG_HOME: join(ROOT, ".wrangler/config"),
    WRANGLER_LOG_PATH: join(ROOT, ".wrangler/logs"),
  };
}

function freePort() {
  return new Promise((ok, fail) => {
    const srv = net.createServer();
    srv.on("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/// The stand-in email provider: records every request, answers like Resend.
function startMail() {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      let json = null;
      try {
        json = JSON.parse(body);
      } catch {}
      requests.push({ method: req.method, path: req.url, headers: req.headers, body, json });
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"id":"x"}');
    });
  });
  return new Promise((ok, fail) => {
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () =>
      ok({
        url: `http://127.0.0.1:${server.address().port}`,
        requests,
        close: () => new Promise((done) => server.close(done)),
      }),
    );
  });
}

/// Every function with a wrangler.toml, after the router (as `make dev`).
function workerDirs() {
  const fns = readdirSync(join(ROOT, "functions"), { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(ROOT, "functions", d.name, "wrangler.toml")))
    .map((d) => d.name)
    .sort();
  return [{ name: "router", dir: ROOT }, ...fns.map((name) => ({ name, dir: join(ROOT, "functions", name) }))];
}

function preconditions() {
  const missing = [];
  if (!existsSync(WRANGLER)) missing.push(`${WRANGLER} (run \`npm ci\`)`);
  if (!existsSync(join(ROOT, "node_modules/playwright-core"))) missing.push("node_modules/playwright-core (run `npm ci`)");
  if (!existsSync(CHROMIUM)) missing.push(`${CHROMIUM} (run tools/chromium.sh)`);
  for (const { name, dir } of workerDirs().slice(1)) {
    const built = join(dir, "build/index.js");
    if (!existsSync(built)) missing.push(`functions/${name}/build/index.js (build the Workers first: make build-workers, or tools/build-worker.sh ${name})`);
  }
  if (missing.length) throw new Error(`browser tests cannot start; missing:\n  ${missing.join("\n  ")}`);
}

/// Copies of the wrangler configs with absolute paths and the suite's
/// settings in a .dev.vars beside each function's copy (wrangler's --var and
/// --env-file reach only the first Worker of a session).
function writeConfigs(configDir) {
  const vars = [
    `DATA_KEYS=${DATA_KEYS}`,
    `INDEX_KEY=${INDEX_KEY}`,
    `TOKEN_KEYS=${TOKEN_KEYS}`,
    `PUBLIC_BASE_URL=${BASE}`,
    `EMAIL_API_BASE=${mail.url}`,
    `EMAIL_API_KEY=re_browser_key`,
    `EMAIL_FROM="Browser Test <news@e2e.example>"`,
    "",
  ].join("\n");
  const args = [];
  for (const { name, dir } of workerDirs()) {
    const text = readFileSync(join(dir, "wrangler.toml"), "utf8")
      .split("\n")
      .map((line) => {
        for (const key of ['main = "', 'migrations_dir = "']) {
          if (line.startsWith(key)) return `${key}${dir}/${line.slice(key.length)}`;
        }
        return line;
      })
      .join("\n");
    const out = join(configDir, name);
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "wrangler.toml"), text);
    if (name !== "router") writeFileSync(join(out, ".dev.vars"), vars);
    args.push("-c", join(out, "wrangler.toml"));
  }
  return args;
}

function runWrangler(args) {
  const r = spawnSync(WRANGLER, args, { cwd: ROOT, env: wranglerEnv(), encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (r.status !== 0) throw new Error(`wrangler ${args.join(" ")} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
}

function logTail() {
  try {
    return readFileSync(join(OUT, "wrangler.log"), "utf8").split("\n").slice(-30).join("\n");
  } catch {
    return "(no log)";
  }
}

async function waitReady(limitMs) {
  const deadline = Date.now() + limitMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (wrangler.exitCode !== null || wrangler.signalCode !== null) {
      throw new Error(`wrangler dev exited (${wrangler.exitCode ?? wrangler.signalCode}); ${join(OUT, "wrangler.log")}:\n${logTail()}`);
    }
    try {
      const res = await fetch(`${API}/s/e2e`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (e) {
      last = e.cause?.code ?? e.message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`wrangler dev not ready after ${limitMs / 1000} s (${last}); ${join(OUT, "wrangler.log")}:\n${logTail()}`);
}

function killServerSync() {
  if (wrangler && wrangler.exitCode === null && wrangler.signalCode === null) {
    try {
      process.kill(-wrangler.pid, "SIGKILL");
    } catch {}
  }
}

async function stopServer() {
  if (!wrangler || wrangler.exitCode !== null || wrangler.signalCode !== null) return;
  const exited = new Promise((r) => wrangler.once("exit", r));
  // The whole group: wrangler → workerd.
  try {
    process.kill(-wrangler.pid, "SIGTERM");
  } catch {}
  const timeout = new Promise((r) => setTimeout(() => r("timeout"), 5000));
  if ((await Promise.race([exited, timeout])) === "timeout") {
    try {
      process.kill(-wrangler.pid, "SIGKILL");
    } catch {}
    await exited;
  }
  // Leftovers of the group (workerd may outlive wrangler briefly).
  try {
    process.kill(-wrangler.pid, "SIGKILL");
  } catch {}
}

/// A fresh Chromium with its own user data dir, reporting problems.
export async function launchBrowser(label) {
  const { chromium } = await import("playwright-core");
  const userDataDir = mkdtempSync(join(tmpdir(), `stagedoor-browser-${label}-`));
  tmpDirs.push(userDataDir);
  const ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    baseURL: BASE,
    viewport: VIEWPORTS.desktop,
    colorScheme: "light",
    acceptDownloads: true,
    locale: "en-GB",
    timezoneId: "UTC",
  });
  ctx.setDefaultTimeout(15_000);
  ctx.setDefaultNavigationTimeout(30_000);
  ctx.on("console", (msg) => {
    // Chromium asks for /favicon.ico by itself, whatever the page says; no
    // route serves one, and that 404 is no page's doing.
    if (msg.type() === "error" && msg.location()?.url === `${BASE}/favicon.ico` && /status of 404/.test(msg.text())) return;
    if (msg.type() === "error") problems.push(`[${label}] console.error at ${msg.location()?.url ?? "?"}: ${msg.text()}`);
  });
  ctx.on("weberror", (err) => problems.push(`[${label}] page error: ${err.error()?.stack ?? err.error()}`));
  // Also reported as console errors by Chromium; this names the directive.
  await ctx.exposeBinding("__stagedoorCsp", (_source, v) =>
    problems.push(`[${label}] CSP violation on ${v.documentURI}: ${v.effectiveDirective} blocked ${v.blockedURI || "inline"}${v.disposition === "report" ? " (report-only)" : ""}`),
  );
  await ctx.addInitScript(() => {
    document.addEventListener(
      "securitypolicyviolation",
      (e) => window.__stagedoorCsp?.({ documentURI: e.documentURI, effectiveDirective: e.effectiveDirective, blockedURI: e.blockedURI, disposition: e.disposition }),
      true,
    );
  });
  return ctx;
}

export async function page(ctx) {
  return ctx.pages()[0] ?? ctx.newPage();
}

/// Full-page screenshots at phone and desktop size, light and dark.
export async function shoot(p, step) {
  for (const [vp, size] of Object.entries(VIEWPORTS)) {
    for (const scheme of SCHEMES) {
      await p.setViewportSize(size);
      await p.emulateMedia({ colorScheme: scheme });
      await p.screenshot({ path: join(SHOTS, `${step}-${vp}-${scheme}.png`), fullPage: true });
    }
  }
  await p.setViewportSize(VIEWPORTS.desktop);
  await p.emulateMedia({ colorScheme: "light" });
}

export async function heading1(p, name) {
  const h1 = p.getByRole("heading", { level: 1, name, exact: true });
  try {
    await h1.waitFor();
  } catch {
    const got = await p.locator("h1").allInnerTexts().catch(() => []);
    assert.fail(`expected h1 "${name}" on ${p.url()}; h1s: ${JSON.stringify(got)}`);
  }
}

/// Fails with the status when the dashboard is not there (yet).
export async function goto(p, path) {
  const res = await p.goto(path);
  assert.ok(res, `no response for ${path}`);
  assert.ok(res.status() < 400, `GET ${path} → ${res.status()} (at ${p.url()}); is the dashboard built, configured and routed?`);
  return res;
}

export async function waitForMail(to, after, limitMs = 15_000) {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    const hit = mail.requests.slice(after).find((r) => [].concat(r.json?.to ?? []).includes(to));
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`no email to ${to} within ${limitMs / 1000} s (${mail.requests.length} recorded)`);
}

export function signInLink(msg) {
  const text = msg.json?.text ?? "";
  const m = text.match(/https?:\/\/\S+?\/app\/sign-in\/verify\?t=[^\s"'<>]+/);
  assert.ok(m, `no sign-in link in the email text:\n${text}`);
  assert.ok(m[0].startsWith(`${BASE}/app/sign-in/verify?t=`), `link ${m[0]} is not on ${BASE}`);
  return m[0];
}

/// Asks for a sign-in link through the form; returns the emailed URL.
export async function requestSignInLink(p) {
  await goto(p, "/app/sign-in");
  const before = mail.requests.length;
  await p.getByLabel("Email", { exact: true }).fill(OWNER);
  await p.getByRole("button", { name: "Send me a sign-in link" }).click();
  await heading1(p, "Check your email");
  return signInLink(await waitForMail(OWNER, before));
}

/// Runs `action` and waits for the next document to load (redirects
/// followed) and be at `pathname`. Unlike waitForURL, never satisfied by the
/// page already shown (a filtered list replaced by another at the same path).
export async function navigation(p, pathname, action) {
  await Promise.all([p.waitForEvent("framenavigated", { predicate: (f) => f === p.mainFrame() }), action()]);
  await p.waitForLoadState();
  assert.equal(new URL(p.url()).pathname, pathname, `ended on ${p.url()}`);
}

/// Picks the option whose value or label is `wanted` (case-insensitive).
export async function choose(select, wanted) {
  const options = await select.locator("option").evaluateAll((os) => os.map((o) => ({ value: o.value, label: o.textContent.trim() })));
  const w = wanted.toLowerCase();
  const hit =
    options.find((o) => o.value.toLowerCase() === w || o.label.toLowerCase() === w) ??
    options.find((o) => o.value.toLowerCase().includes(w) || o.label.toLowerCase().includes(w));
  assert.ok(hit, `no option "${wanted}" in ${JSON.stringify(options)}`);
  await select.selectOption(hit.value);
}


before(
  async () => {
    const started = Date.now();
    preconditions();
    rmSync(OUT, { recursive: true, force: true });
    mkdirSync(SHOTS, { recursive: true });
    mail = await startMail();
    port = await freePort();
    BASE = `http://localhost:${port}`;
    API = `http://127.0.0.1:${port}`;
    const configArgs = writeConfigs(join(OUT, "config"));
    const persist = join(OUT, "state");
    runWrangler(["d1", "migrations", "apply", "DB", "--local", "-c", "wrangler.toml", "--persist-to", persist]);
    runWrangler(["d1", "execute", "DB", "--local", "-c", "wrangler.toml", "--file", "tests/e2e/fixtures.sql", "--persist-to", persist]);
    const log = openSync(join(OUT, "wrangler.log"), "w");
    wrangler = spawn(
      WRANGLER,
      ["dev", ...configArgs, "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persist, "--show-interactive-dev-session=false", "--log-level", "warn"],
      { cwd: ROOT, env: wranglerEnv(), detached: true, stdio: ["ignore", log, log] },
    );
    // If the runner dies before `after` (Ctrl-C, a kill), take the server
    // down with it: it is in its own process group, out of the signal's reach.
    process.once("exit", () => {
      killServerSync();
      for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
    });
    for (const [signal, n] of [["SIGINT", 2], ["SIGTERM", 15], ["SIGHUP", 1]]) {
      process.once(signal, () => {
        killServerSync();
        process.exit(128 + n);
      });
    }
    await waitReady(120_000);
    const ready = Date.now();

    for (const fan of FANS) {
      const headers = { "content-type": "application/json", "cf-connecting-ip": fan.ip };
      if (fan.cf) headers["mf-cf-blob"] = fan.cf;
      const res = await fetch(`${API}/api/v1/signup`, {
        method: "POST",
        headers,
        body: JSON.stringify({ page: fan.page, email: fan.email, consent: true }),
      });
      const body = await res.text();
      assert.equal(res.status, 200, `signup ${fan.email}: ${res.status} ${body}`);
      assert.equal(JSON.parse(body).status, fan.status, `signup ${fan.email}: ${body}`);
      seeded.push(fan);
    }

    browser = await launchBrowser("main");
    console.log(`server ready in ${((ready - started) / 1000).toFixed(1)} s; fans seeded and Chromium up in ${((Date.now() - started) / 1000).toFixed(1)} s; ${BASE}`);
  },
  { timeout: 240_000 },
);

after(
  async () => {
    await browser?.close().catch(() => {});
    await stopServer();
    await mail?.close();
    for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
  },
  { timeout: 30_000 },
);

beforeEach(() => {
  problems = [];
  allowed = [];
});

afterEach(() => {
  const left = problems.filter((p) => !allowed.some((re) => re.test(p)));
  assert.deepEqual(left, [], `console errors, page errors or CSP violations:\n${left.join("\n")}`);
});


/// Drops the problems `pred` matches (a test that provokes one on purpose).
export function forget(pred) {
  problems = problems.filter((m) => !pred(m));
}

/// Signs `p`'s browser in as `email` through the emailed link, as a person
/// would; returns the path it lands on.
export async function signIn(p, email = OWNER) {
  await goto(p, "/app/sign-in");
  const before = mail.requests.length;
  await p.getByLabel("Email", { exact: true }).fill(email);
  await p.getByRole("button", { name: "Send me a sign-in link" }).click();
  await heading1(p, "Check your email");
  await goto(p, signInLink(await waitForMail(email, before)));
  await Promise.all([p.waitForEvent("framenavigated", { predicate: (f) => f === p.mainFrame() }), p.getByRole("button", { name: "Sign in", exact: true }).click()]);
  await p.waitForLoadState();
  return new URL(p.url()).pathname;
}

