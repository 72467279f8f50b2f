// Keeps functions/links/src/icons.rs in step with the installed simple-icons
// package: a version bump or an edit by hand fails here until
// `node tools/icons.mjs` is run again. Run by `make test-js`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { OUT, render } from "./icons.mjs";

test("icons.rs is what tools/icons.mjs generates from the installed package", () => {
  assert.equal(readFileSync(OUT, "utf8"), render(), "run `node tools/icons.mjs` and commit functions/links/src/icons.rs");
});

test("every mark is plain path data", () => {
  const paths = [...render().matchAll(/^ {4}"([^"]*)",$/gm)].map((m) => m[1]);
  assert.equal(paths.length, 10);
  for (const d of paths) assert.match(d, /^M[0-9A-Za-z .,-]+$/);
});
