// Starts one local workerd (through the `miniflare` package that wrangler
// ships) with everything `make bench` measures on Workers:
//   - the front door (wrangler.toml → router/index.js) and every function
//     Worker given on the command line (functions/<name>/wrangler.toml, as
//     built by `make build-workers`), with their real bindings;
//   - the baseline Workers in bench/baselines/workers/*.js;
// all sharing local D1 + KV persisted under --state (wrangler's layout, so
// `wrangler d1 … --persist-to <state>` sees the same database).
//
// Every Worker gets its own direct socket: workerd's HTTP server straight
// into that Worker, without wrangler's dev proxy and without Miniflare's
// entry Worker. That is the path the bench measures. Once ready it prints
// one line `BENCH-READY {json}` with the URLs, then runs until SIGTERM.
//
//   node bench/workerd.mjs --state DIR --secrets FILE [--function NAME]… [--var K=V]…

import { readFileSync, readdirSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

const root = resolve(import.meta.dirname, "..");

function parseArgs(argv) {
  const out = { functions: [], vars: {}, state: null, secrets: null };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[++i];
    if (value === undefined) throw new Error(`missing value for ${argv[i - 1]}`);
    switch (argv[i - 1]) {
      case "--state": out.state = resolve(value); break;
      case "--secrets": out.secrets = resolve(value); break;
      case "--function": out.functions.push(value); break;
      case "--var": {
        const at = value.indexOf("=");
        if (at < 1) throw new Error(`--var wants NAME=value, got ${value}`);
        out.vars[value.slice(0, at)] = value.slice(at + 1);
        break;
      }
      default: throw new Error(`unknown argument ${argv[i - 1]}`);
    }
  }
  if (!out.state || !out.secrets) throw new Error("--state and --secrets are required");
  return out;
}

// KEY=value lines, as `make secrets` writes them.
function readSecrets(path) {
  const vars = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) vars[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return vars;
}

// Our .js files are ES modules (wrangler's bundler knows; Miniflare would
// otherwise take .js for CommonJS).
const ESM = { type: "ESModule", include: ["**/*.js", "**/*.mjs"] };

// A Worker from its wrangler config, the way `wrangler dev` would load it.
function fromConfig(configPath) {
  const { workerOptions, main } = unstable_getMiniflareWorkerOptions(configPath);
  const name = readFileSync(configPath, "utf8").match(/^name\s*=\s*"([^"]+)"/m)?.[1];
  if (!name || !main) throw new Error(`${configPath}: needs name and main`);
  return { ...workerOptions, name, modules: true, scriptPath: main, modulesRules: [ESM, ...(workerOptions.modulesRules ?? [])] };
}

function baseline(file, bindings) {
  return {
    name: `baseline-${basename(file, ".js")}`,
    modules: true,
    scriptPath: file,
    modulesRules: [ESM],
    compatibilityDate: "2026-04-01",
    ...bindings,
  };
}

const args = parseArgs(process.argv.slice(2));
const secrets = readSecrets(args.secrets);

const functions = args.functions.map((f) => {
  const worker = fromConfig(join(root, "functions", f, "wrangler.toml"));
  // Keys from the bench's own copy of the local secrets, then the bench's
  // overrides (e.g. raised rate limits) on top of the config's [vars].
  worker.bindings = { ...worker.bindings, ...secrets, ...args.vars };
  return worker;
});
const loaded = new Set(functions.map((w) => w.name));

const frontDoor = fromConfig(join(root, "wrangler.toml"));
// Bindings to functions that are not built yet would stop workerd starting.
const skippedBindings = [];
for (const [binding, target] of Object.entries(frontDoor.serviceBindings ?? {})) {
  const service = typeof target === "string" ? target : target.name;
  if (!loaded.has(service)) {
    delete frontDoor.serviceBindings[binding];
    skippedBindings.push(binding);
  }
}

// Baselines share the functions' D1 database and KV namespace (same ids).
const storage = { d1Databases: frontDoor.d1Databases, kvNamespaces: frontDoor.kvNamespaces };
const baselineDir = join(root, "bench", "baselines", "workers");
const baselines = readdirSync(baselineDir)
  .filter((f) => f.endsWith(".js"))
  .sort()
  .map((f) => baseline(join(baselineDir, f), storage));

const workers = [frontDoor, ...functions, ...baselines].map((w) => ({
  ...w,
  unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
}));

const mf = new Miniflare({
  host: "127.0.0.1",
  port: 0,
  d1Persist: join(args.state, "v3", "d1"),
  kvPersist: join(args.state, "v3", "kv"),
  logRequests: false,
  workers,
});

const entry = await mf.ready;
const direct = {};
for (const w of workers) direct[w.name] = (await mf.unsafeGetDirectURL(w.name)).href.replace(/\/$/, "");
const info = {
  entry: entry.href.replace(/\/$/, ""),
  frontDoor: frontDoor.name,
  direct,
  skippedBindings,
  pid: process.pid,
};
process.stdout.write(`BENCH-READY ${JSON.stringify(info)}\n`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await mf.dispose();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
