// Keeps functions/links/src/icons.rs in step with the installed simple-icons
// package: a version bump or an edit by hand fails here until
// `node tools/icons.mjs` is run again. Run by `make test-js`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as icons from "simple-icons";
import { DIGITS, OUT, render } from "./icons.mjs";
import { absolute, parse, round } from "./svgpath.mjs";

test("icons.rs is what tools/icons.mjs generates from the installed package", () => {
  assert.equal(readFileSync(OUT, "utf8"), render(), "run `node tools/icons.mjs` and commit functions/links/src/icons.rs");
});

test("every mark is plain path data", () => {
  const paths = [...render().matchAll(/^ {4}"([^"]*)",$/gm)].map((m) => m[1]);
  assert.equal(paths.length, 10);
  for (const d of paths) assert.match(d, /^M[0-9A-Za-z .,-]+$/);
});

// Rounded marks keep their shape: the same segments, every point within
// half a step of the package's, however long the path (relative commands
// are written from rounded points, so errors cannot add up).
test("every rounded mark stays within half a step of the package's", () => {
  const marks = Object.values(icons).filter((i) => i && typeof i.path === "string").slice(0, 400);
  assert.ok(marks.length >= 400);
  for (const icon of [icons.siSpotify, icons.siApplemusic, icons.siDeezer, icons.siSoundcloud, ...marks]) {
    const a = absolute(parse(icon.path));
    const b = absolute(parse(round(icon.path, DIGITS)));
    assert.equal(b.length, a.length, icon.slug);
    a.forEach((s, i) => {
      assert.equal(b[i].cmd, s.cmd, `${icon.slug} segment ${i}`);
      s.args.forEach((v, k) => assert.ok(Math.abs(v - b[i].args[k]) <= 0.5 / 10 ** DIGITS + 1e-9, `${icon.slug} segment ${i}: ${v} → ${b[i].args[k]}`));
    });
  }
});

test("rounding writes the short forms and keeps arcs' flags apart", () => {
  assert.equal(round("M0.04 0.96L1.26 -0.44l0.5 0.5", 1), "M0 1L1.3-.4l.5.5");
  assert.equal(round("m1 1 2 2", 1), "m1 1l2 2");
  assert.equal(round("M1 1a1 1 0 011 1z", 1), "M1 1a1 1 0 0 1 1 1z");
  // A relative run of small steps lands where the original does.
  assert.equal(round("M0 0l.04 0 .04 0 .04 0 .04 0 .04 0", 1), "M0 0l0 0 .1 0 0 0 .1 0 0 0");
});
