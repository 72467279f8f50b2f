// SVG path data with fewer digits: every point rounded to `digits` decimals
// (tools/icons.mjs, for the smart-link page's marks). A relative command is
// written from the *rounded* previous point to the rounded new one, so
// rounding errors never add up along a path: each point ends within half a
// step of where the original puts it (tools/icons.test.mjs checks this for
// every mark).

const ARITY = { M: 2, L: 2, H: 1, V: 1, C: 6, S: 4, Q: 4, T: 2, A: 7, Z: 0 };
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/;

/** [{ cmd, args }], one entry per segment (implicit repeats made explicit). */
export function parse(d) {
  const out = [];
  let i = 0;
  const skip = () => {
    while (i < d.length && /[\s,]/.test(d[i])) i++;
  };
  const number = () => {
    skip();
    const m = NUMBER.exec(d.slice(i));
    if (!m) throw new Error(`path data: a number expected at ${i}: ${d.slice(i, i + 12)}`);
    i += m[0].length;
    return Number(m[0]);
  };
  const flag = () => {
    skip();
    if (d[i] !== "0" && d[i] !== "1") throw new Error(`path data: an arc flag expected at ${i}`);
    return Number(d[i++]);
  };
  let cmd = null;
  for (skip(); i < d.length; skip()) {
    if (/[A-Za-z]/.test(d[i])) {
      cmd = d[i++];
      if (!(cmd.toUpperCase() in ARITY)) throw new Error(`path data: unknown command ${cmd}`);
    } else if (cmd === null || cmd.toUpperCase() === "Z") {
      throw new Error(`path data: a command expected at ${i}`);
    }
    const up = cmd.toUpperCase();
    const args = up === "A" ? [number(), number(), number(), flag(), flag(), number(), number()] : Array.from({ length: ARITY[up] }, number);
    out.push({ cmd, args });
    // Pairs after a move are lines (SVG 2, 9.3.3).
    if (cmd === "M") cmd = "L";
    else if (cmd === "m") cmd = "l";
    if (up === "Z") cmd = null;
  }
  return out;
}

/** Every segment in absolute coordinates: [{ cmd (upper case), args }]. */
export function absolute(segments) {
  let x = 0, y = 0, sx = 0, sy = 0;
  return segments.map(({ cmd, args }) => {
    const up = cmd.toUpperCase();
    const rel = cmd !== up;
    const a = [...args];
    if (rel) {
      if (up === "H") a[0] += x;
      else if (up === "V") a[0] += y;
      else if (up === "A") { a[5] += x; a[6] += y; }
      else for (let k = 0; k < a.length; k += 2) { a[k] += x; a[k + 1] += y; }
    }
    if (up === "H") x = a[0];
    else if (up === "V") y = a[0];
    else if (up === "Z") { x = sx; y = sy; }
    else { x = a[a.length - 2]; y = a[a.length - 1]; }
    if (up === "M") { sx = x; sy = y; }
    return { cmd: up, args: a };
  });
}

/** The path again, each point rounded to `digits` decimals, written as short as it reads. */
export function round(d, digits = 1) {
  const f = 10 ** digits;
  const r = (v) => Math.round(v * f) / f;
  const segments = parse(d);
  const abs = absolute(segments);
  // The rounded pen position, which relative commands are written from.
  let x = 0, y = 0, sx = 0, sy = 0;
  let text = "";
  let last = null; // the last number written, to know whether a separator is needed
  let prevCmd = null;
  const put = (v) => {
    let s = String(r(v) === 0 ? 0 : r(v));
    s = s.replace(/^(-?)0\./, "$1.");
    if (last !== null && !s.startsWith("-") && !(s.startsWith(".") && last.includes("."))) text += " ";
    text += s;
    last = s;
  };
  segments.forEach(({ cmd }, n) => {
    const up = cmd.toUpperCase();
    const rel = cmd !== up;
    const a = abs[n].args.map(r);
    // A repeated command needs no letter, except a move (more pairs would be lines).
    if (cmd !== prevCmd || up === "M") {
      text += cmd;
      last = null;
    }
    prevCmd = cmd;
    const point = (px, py) => {
      put(rel ? px - x : px);
      put(rel ? py - y : py);
    };
    if (up === "H") put(rel ? a[0] - x : a[0]);
    else if (up === "V") put(rel ? a[0] - y : a[0]);
    else if (up === "A") {
      put(a[0]);
      put(a[1]);
      put(a[2]);
      // Flags as their own tokens: some parsers do not split "11".
      text += ` ${abs[n].args[3]} ${abs[n].args[4]}`;
      last = "0";
      point(a[5], a[6]);
    } else for (let k = 0; k < a.length; k += 2) point(a[k], a[k + 1]);
    if (up === "H") x = a[0];
    else if (up === "V") y = a[0];
    else if (up === "Z") { x = sx; y = sy; }
    else { x = a[a.length - 2]; y = a[a.length - 1]; }
    if (up === "M") { sx = x; sy = y; }
  });
  return text;
}
