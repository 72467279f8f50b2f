// Tests tools/worker-shim.js, the entry module of every Worker, against a
// stand-in for wasm-bindgen's glue: what it hands through, and when it
// starts the next request on a fresh instance. Run by `make test`
// (`node --test tools/`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

// The glue's exports the shim uses; `glue.answer` plays the wasm `fetch`.
const dir = mkdtempSync(join(tmpdir(), "worker-shim-"));
writeFileSync(
  join(dir, "index.js"),
  `export const glue = { state: { criticalError: false, instanceId: 1 }, resets: 0, answer: null };
export function __worker_init_state() { return glue.state; }
export function __wbg_reset_state() { glue.resets++; }
export function fetch(req, env, ctx) { return glue.answer(req, env, ctx); }
`,
);
copyFileSync(new URL("./worker-shim.js", import.meta.url), join(dir, "shim.js"));

const listeners = [];
globalThis.addEventListener = (type, fn) => listeners.push([type, fn]);
const { glue } = await import(pathToFileURL(join(dir, "index.js")));
const { default: worker } = await import(pathToFileURL(join(dir, "shim.js")));
console.error = () => {}; // the shim logs each crash

const trap = () => new WebAssembly.RuntimeError("unreachable");

test("hands request, env and ctx to the wasm fetch and returns its answer as is", async () => {
  const req = {}, env = {}, ctx = {}, res = {};
  glue.answer = (...args) => {
    assert.deepEqual(args.map((a, i) => a === [req, env, ctx][i]), [true, true, true]);
    return res;
  };
  assert.equal(worker.fetch(req, env, ctx), res, "a synchronous answer is not wrapped");
  glue.answer = async () => res;
  assert.equal(await worker.fetch(req, env, ctx), res);
  assert.equal(glue.resets, 0);
});

test("a trap thrown synchronously is rethrown, and the next request gets a fresh instance", () => {
  const before = glue.resets, id = glue.state.instanceId;
  glue.answer = () => { throw trap(); };
  assert.throws(() => worker.fetch({}, {}, {}), WebAssembly.RuntimeError);
  glue.answer = () => "ok";
  assert.equal(worker.fetch({}, {}, {}), "ok");
  assert.equal(glue.resets, before + 1);
  assert.equal(glue.state.instanceId, id + 1);
  assert.equal(glue.state.criticalError, false);
  worker.fetch({}, {}, {});
  assert.equal(glue.resets, before + 1, "one reset per crash");
});

test("a trap in an awaited answer counts too", async () => {
  const before = glue.resets;
  glue.answer = async () => { throw trap(); };
  await assert.rejects(worker.fetch({}, {}, {}), WebAssembly.RuntimeError);
  glue.answer = () => "ok";
  worker.fetch({}, {}, {});
  assert.equal(glue.resets, before + 1);
});

test("a Rust panic (the panic hook sets criticalError) resets before the next request", () => {
  const before = glue.resets;
  glue.answer = () => { glue.state.criticalError = true; throw new Error("Rust panic"); };
  assert.throws(() => worker.fetch({}, {}, {}), /Rust panic/);
  glue.answer = () => "ok";
  worker.fetch({}, {}, {});
  assert.equal(glue.resets, before + 1);
});

test("ordinary errors leave the instance alone", async () => {
  const before = glue.resets;
  glue.answer = () => { throw new TypeError("bad input"); };
  assert.throws(() => worker.fetch({}, {}, {}), TypeError);
  glue.answer = async () => { throw new Error("D1 down"); };
  await assert.rejects(worker.fetch({}, {}, {}), /D1 down/);
  glue.answer = () => "ok";
  worker.fetch({}, {}, {});
  assert.equal(glue.resets, before);
});

test("a trap reported as an uncaught error event resets too", () => {
  const before = glue.resets;
  const [, onError] = listeners.find(([type]) => type === "error");
  onError({ error: new Error("not a trap") });
  worker.fetch({}, {}, {});
  assert.equal(glue.resets, before);
  onError({ error: trap() });
  worker.fetch({}, {}, {});
  assert.equal(glue.resets, before + 1);
});

test("a module without a scheduled export gives the Worker none", () => {
  assert.equal(worker.scheduled, undefined);
});

test("a scheduled export is handed controller, env and ctx, and its failure is rethrown", async () => {
  // A second glue that exports `scheduled` too (shared::export_scheduled!).
  const dir2 = mkdtempSync(join(tmpdir(), "worker-shim-scheduled-"));
  writeFileSync(
    join(dir2, "index.js"),
    `export const glue = { state: { criticalError: false, instanceId: 1 }, resets: 0, run: null };
export function __worker_init_state() { return glue.state; }
export function __wbg_reset_state() { glue.resets++; }
export function fetch() { return null; }
export function scheduled(c, env, ctx) { return glue.run(c, env, ctx); }
`,
  );
  copyFileSync(new URL("./worker-shim.js", import.meta.url), join(dir2, "shim.js"));
  // What tools/build-worker.sh defines for such a module.
  globalThis.STAGEDOOR_SCHEDULED = true;
  const { glue: g } = await import(pathToFileURL(join(dir2, "index.js")));
  const { default: w } = await import(pathToFileURL(join(dir2, "shim.js")));
  delete globalThis.STAGEDOOR_SCHEDULED;
  const controller = { cron: "* * * * *" }, env = {}, ctx = {};
  g.run = async (...args) => {
    assert.deepEqual(args.map((a, i) => a === [controller, env, ctx][i]), [true, true, true]);
  };
  await w.scheduled(controller, env, ctx);
  g.run = async () => { throw trap(); };
  await assert.rejects(w.scheduled(controller, env, ctx), WebAssembly.RuntimeError);
  g.run = async () => {};
  await w.scheduled(controller, env, ctx);
  assert.equal(g.resets, 1, "the run after a trap starts on a fresh instance");
});
