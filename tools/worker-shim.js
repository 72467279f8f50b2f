// The entry module of every Stagedoor Worker: tools/build-worker.sh bundles
// it with wasm-bindgen's glue (./index.js).
//
// A plain module export: the runtime calls `fetch` directly. (worker-build's
// own shim wraps a WorkerEntrypoint class in Proxies that are rebuilt per
// request; on the smart-link redirect that was a measurable share of the
// time.) Recovery after a crash is kept:
// - a wasm trap runs wasm-bindgen's abort handler, which schedules a fresh
//   instance for the next call (built with --force-enable-abort-handler);
// - a Rust panic, or a trap seen here, sets `criticalError`, and the next
//   request starts on a fresh instance (--experimental-reset-state-function).
import * as wasm from "./index.js";

const state = wasm.__worker_init_state();

function noteCrash(e) {
  if (e instanceof WebAssembly.RuntimeError) {
    console.error("wasm trap; the next request starts a fresh instance:", e);
    state.criticalError = true;
  }
}

function freshAfterCrash() {
  if (state.criticalError) {
    wasm.__wbg_reset_state();
    state.criticalError = false;
    state.instanceId++;
  }
}

addEventListener("error", (e) => noteCrash(e.error));

function rethrow(e) {
  noteCrash(e);
  throw e;
}

const handlers = {
  fetch(request, env, ctx) {
    freshAfterCrash();
    let res;
    try {
      res = wasm.fetch(request, env, ctx);
    } catch (e) {
      rethrow(e);
    }
    // Answers served from memory come back as a Response, the rest as a
    // promise whose failure is checked the same way.
    return res instanceof Promise ? res.catch(rethrow) : res;
  },
};

// Cron Triggers, for a function built with `shared::export_scheduled!`
// (functions/jobs): tools/build-worker.sh defines STAGEDOOR_SCHEDULED as
// true when the module exports `scheduled` and false otherwise, so the
// bundler drops this block from every other Worker. (Unbundled, as in the
// node tests, it is read from the global scope.)
if (typeof STAGEDOOR_SCHEDULED !== "undefined" && STAGEDOOR_SCHEDULED) {
  handlers.scheduled = (controller, env, ctx) => {
    freshAfterCrash();
    try {
      return wasm.scheduled(controller, env, ctx).catch(rethrow);
    } catch (e) {
      rethrow(e);
    }
  };
}

export default handlers;
