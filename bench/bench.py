#!/usr/bin/env python3
"""`make bench`: sizes, throughput and latency of every Stagedoor function on
the local runtimes, each route next to a baseline measured the same way in
the same run. Writes bench/results/latest.{md,json,png} and prints the
Markdown. Benchmarks are reports, not tests: the exit status is non-zero only
when something could not be measured or a response was wrong.

Run it through `make bench` (which builds the release artefacts first).
Knobs: BENCH_SECONDS (per measurement, default 3), BENCH_REPEATS (default 3),
BENCH_RUNTIMES (default "workers spin"), BENCH_ROUTES (route ids to measure,
with their baselines; default all), BENCH_DROP (signups in the simulated
drop, default from routes.json; 0 skips it), BENCH_SPIN_HOST (another build
of the Spin host), BENCH_FUNCTIONS (set by make from FUNCTIONS: the functions
that were built). See bench/README.md.
"""

import datetime
import importlib.util
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import tomllib
import urllib.parse
from pathlib import Path

sys.dont_write_bytecode = True  # hooks are imported from bench/hooks: leave no __pycache__ behind

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
WORK = ROOT / "target" / "bench"
CONNECTIONS = (1, 16)
WARMUP_SECONDS = 1
NOISY = 1.5  # max/min req/s across a cell's runs above which it is marked
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Built by `make spin-host` with the host's own profile (Cargo.toml [profile.host]).
SPIN_HOST = ROOT / "target" / "host" / "spin-host"


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# --- small helpers -------------------------------------------------------------


def sh(args, **kw):
    out = subprocess.run(args, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args[:4]))} … failed ({out.returncode}):\n{(out.stderr or out.stdout)[-2000:]}")
    return out.stdout


def try_sh(args):
    try:
        return sh(args).strip()
    except (OSError, RuntimeError):
        return ""


def gzip_size(path):
    out = subprocess.run(["gzip", "-9", "-c", "-n", str(path)], check=True, capture_output=True).stdout
    return len(out)


def read_kv_file(path):
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def load_hook(rel):
    spec = importlib.util.spec_from_file_location(Path(rel).stem + "_hook", ROOT / rel)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --- machine and artefacts -------------------------------------------------------


def machine_info():
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = ""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    wrk = try_sh(["sh", "-c", "wrk -v 2>&1 | head -n 1"])
    pkg = lambda p: json.loads((ROOT / "node_modules" / p / "package.json").read_text()).get("version", "?")
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory": mem,
        "kernel": platform.release(),
        "load_start": [round(x, 2) for x in os.getloadavg()],
        "commit": try_sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "dirty": bool(try_sh(["git", "-C", str(ROOT), "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"])),
        "tools": {
            "wrk": wrk.split(" [")[0],
            "node": try_sh(["node", "--version"]),
            "wrangler": pkg("wrangler"),
            "workerd": pkg("workerd"),
            "python": platform.python_version(),
        },
    }


def cpu_busy(seconds=1.0):
    """Share of all cores busy over `seconds`, read from /proc/stat: taken
    while the bench's own servers sit idle, it is other people's work."""

    def sample():
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return round(1 - (i1 - i0) / max(t1 - t0, 1), 2)


def discover_functions():
    """Every functions/<dir>/Cargo.toml, with its crate name."""
    out = {}
    for cargo in sorted((ROOT / "functions").glob("*/Cargo.toml")):
        name = tomllib.loads(cargo.read_text())["package"]["name"]
        out[cargo.parent.name] = name
    return out


def sizes(functions, built):
    rows = []
    for f, crate in functions.items():
        row = {"function": f, "built": f in built}
        if f in built:
            for key, path in [
                ("workers_wasm", ROOT / "functions" / f / "build" / "index_bg.wasm"),
                ("workers_js", ROOT / "functions" / f / "build" / "index.js"),
                ("spin_wasm", ROOT / "target" / "wasm32-wasip2" / "release" / f"{crate.replace('-', '_')}.wasm"),
            ]:
                if path.exists():
                    row[key] = {"raw": path.stat().st_size, "gzip": gzip_size(path), "path": str(path.relative_to(ROOT))}
        rows.append(row)
    router = ROOT / "router" / "index.js"
    if router.exists():
        rows.append({"function": "front door (router/index.js)", "built": True,
                     "workers_js": {"raw": router.stat().st_size, "gzip": gzip_size(router), "path": "router/index.js"}})
    return rows


# --- what to measure ---------------------------------------------------------------


class Target:
    """One thing wrk hits: a route, a baseline, or a route through the front door."""

    def __init__(self, spec, kind):
        self.spec = spec
        self.kind = kind  # route | baseline | hop
        self.id = spec["id"] + ("@front-door" if kind == "hop" else "")
        self.title = spec["title"]
        self.method = spec.get("method", "GET")
        self.path = spec.get("path", "")
        self.body = spec.get("body", "")
        self.headers = dict(spec.get("headers", {}))
        self.expect = spec.get("expect", {})
        self.baseline = spec.get("baseline")
        self.function = spec.get("function")
        self.paths_file = None
        self.offset = 0
        self.base = None  # http://host:port
        self.status = "ok"  # ok | skipped | failed
        self.note = ""
        self.cells = {}
        self.rows_read = None  # routes.json `rows_read`: counted after the check
        self.page_bytes = None  # an HTML answer's size, from the check

    def skip(self, why):
        self.status, self.note = "skipped", why

    def fail(self, why):
        self.status, self.note = "failed", why

    def to_json(self):
        return {
            "id": self.id, "kind": self.kind, "title": self.title, "function": self.function,
            "baseline": self.baseline, "method": self.method, "path": self.path or None,
            "status": self.status, "note": self.note, "cells": self.cells,
            **({"rows_read": self.rows_read} if self.rows_read else {}),
            **({"page_bytes": self.page_bytes} if self.page_bytes else {}),
        }


def plan_targets(config, runtime, functions, built, selected=None):
    """Every baseline and route of routes.json, each ok or skipped with the
    reason. `selected` (BENCH_ROUTES): route ids to measure; the others are
    skipped, and so are the baselines none of them is compared with."""
    targets = [Target(b, "baseline") for b in config["baselines"]]
    if selected:
        wanted = {r["baseline"] for r in config["routes"] if r["id"] in selected and r.get("baseline")} | set(selected)
        for t in targets:
            if t.id not in wanted:
                t.skip("not selected (BENCH_ROUTES)")
    for spec in config["routes"]:
        t = Target(spec, "route")
        f = t.function
        if selected and t.id not in selected:
            t.skip("not selected (BENCH_ROUTES)")
        elif f not in functions:
            t.skip(f"not built yet: there is no functions/{f}")
        elif f not in built:
            t.skip(f"not built yet: `{f}` is not in the Makefile's FUNCTIONS")
        elif spec.get("hook") and not (ROOT / spec["hook"]).exists():
            t.skip(f"no seed hook yet: {spec['hook']} is missing (see bench/README.md)")
        else:
            why = runtime.missing(f, functions[f])
            if why:
                t.skip(why)
        targets.append(t)
        if spec.get("front_door_hop") and runtime.has_front_door:
            hop = Target(spec, "hop")
            if t.status != "ok":
                hop.skip(t.note)
            targets.append(hop)
    return targets


# --- HTTP checks ---------------------------------------------------------------------


def request(base, method, path, headers, body, timeout=30):
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, path, body=body.encode() if body else None, headers=headers)
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read().decode("utf-8", "replace")
    finally:
        conn.close()


def count_rows(runtime, sql):
    db = runtime.db_path()
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return c.execute(sql).fetchone()[0]
    finally:
        c.close()


def path_at(t, i):
    if t.paths_file:
        return t.paths[i % len(t.paths)]
    return t.path


def verify(runtime, t):
    """A fast wrong answer must not score: check status, Location, body and
    rows written before measuring anything."""
    exp = t.expect
    repeat = exp.get("repeat", 1)
    rows_sql = exp.get("rows")
    before = count_rows(runtime, rows_sql) if rows_sql else 0
    headers = {**runtime.client_headers, **t.headers}
    for i in range(repeat):
        path = path_at(t, t.offset + i)
        # Unique across checks of the same target too (the drop checks again).
        body = t.body.replace("{n}", re.sub(r"[^A-Za-z0-9]+", "-", f"verify-{runtime.name}-{t.id}-{t.offset + i}"))
        try:
            status, hdrs, text = request(t.base, t.method, path, headers, body)
        except OSError as e:
            return f"{t.method} {path}: {e}"
        if status != exp.get("status", 200):
            return f"{t.method} {path} (request {i + 1} of {repeat}): status {status}, expected {exp.get('status', 200)}: {text[:200]!r}"
        if "location" in exp and hdrs.get("location") != exp["location"]:
            return f"{t.method} {path}: Location {hdrs.get('location')!r}, expected {exp['location']!r}"
        if "body_contains" in exp and exp["body_contains"] not in text:
            return f"{t.method} {path}: body lacks {exp['body_contains']!r}: {text[:200]!r}"
        if t.kind == "route" and hdrs.get("content-type", "").startswith("text/html"):
            t.page_bytes = len(text.encode("utf-8"))
    t.offset += repeat
    if rows_sql:
        # A component may answer first and write after (Spin): give the
        # writes a moment, more under lock contention.
        deadline = time.time() + 3
        written = count_rows(runtime, rows_sql) - before
        while written < repeat and time.time() < deadline:
            time.sleep(0.05)
            written = count_rows(runtime, rows_sql) - before
        if written != repeat:
            return f"{repeat} requests wrote {written} rows ({rows_sql})"
    return None


def rows_read(runtime, spec):
    """Rows a view's statements read, counted on the runtime's own database
    file: one `count(*)` per statement over the index range it scans
    (routes.json `rows_read.sql`, the same ranges the view's queries name).
    Neither adapter hands D1's `meta.rows_read` or SQLite's VM counters to
    the bench, so the ranges are counted instead."""
    counts = [count_rows(runtime, q) for q in spec["sql"]]
    return {"total": sum(counts), "per_statement": counts, "how": spec["how"]}


def setup(runtime, t):
    s = t.spec.get("setup")
    if not s:
        return None
    status, _, text = request(t.base, s.get("method", "PUT"), t.path, runtime.client_headers, s.get("body", ""))
    if status != s.get("status", 200):
        return f"setup {s.get('method')} {t.path}: status {status}: {text[:200]!r}"
    return None


# --- load -------------------------------------------------------------------------------


def wrk_env(runtime, t, threads, tag):
    """What bench/wrk/request.lua reads: the target's request, as the
    runtime's clients send it."""
    headers = {**runtime.client_headers, **t.headers}
    return {
        **os.environ,
        "BENCH_METHOD": t.method,
        "BENCH_PATH": t.path,
        "BENCH_PATHS_FILE": str(t.paths_file or ""),
        "BENCH_OFFSET": str(t.offset),
        "BENCH_BODY": t.body,
        "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items()),
        "BENCH_TAG": re.sub(r"[^A-Za-z0-9]+", "-", tag),
        "BENCH_THREADS": str(threads),
    }


def wrk(runtime, t, conns, seconds, tag):
    threads = min(conns, os.cpu_count() or 1)
    env = wrk_env(runtime, t, threads, f"{t.id}-{tag}")
    rows_sql = t.expect.get("rows")
    before = count_rows(runtime, rows_sql) if rows_sql else None
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s",
           "-s", str(BENCH / "wrk" / "request.lua"), t.base + (t.path or "/")]
    pids = runtime.server_pids()
    cpu0 = cpu_seconds(pids)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    # CPU after the work still under way for this run's requests: in flight
    # when wrk stopped, or done after answering (Spin components may answer
    # first and write after).
    settle = settle_server(runtime, t.base)
    cpu1 = cpu_seconds(pids)
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH-RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    r = json.loads(line.split(" ", 1)[1])
    errors = sum(r["errors"].values())
    secs = r["duration_us"] / 1e6
    result = {
        "rps": r["requests"] / secs,
        "p50_ms": r["latency_us"]["p50"] / 1000,
        "p99_ms": r["latency_us"]["p99"] / 1000,
        "requests": r["requests"],
        "errors": errors,
        "error_detail": r["errors"],
        "settle_s": settle,
    }
    if cpu0 is not None and cpu1 is not None and r["requests"]:
        result["server_cpu_s"] = round(cpu1 - cpu0, 3)
        result["cpu_ms_per_req"] = (cpu1 - cpu0) * 1000 / r["requests"]
    t.offset = r["next_offset"]
    if rows_sql:
        # Every answer wrk counted as good must have written its row; up to
        # `conns` more requests were still in flight when wrk stopped (and
        # have finished: settle_server above).
        result["rows_written"] = count_rows(runtime, rows_sql) - before
        result["rows_ok"] = result["rows_written"] >= r["requests"] - r["errors"]["status"]
    return result


def open_connections(port):
    """Server-side TCP connections on `port` still open (ESTABLISHED or
    CLOSE_WAIT): once wrk has closed its side, each is a request the server
    has not answered yet."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] in ("01", "08"):
                n += 1
    return n


SETTLE_LIMIT = 30.0  # s; more than the Spin host's 5 s busy timeout several times over
SETTLE_NOTE = 1.0  # s; a cell whose server needed longer than this after a run is marked


def settle_server(runtime, base, limit=SETTLE_LIMIT):
    """Wait (at most `limit` s) until the server has finished the work wrk's
    requests left behind, so that it neither runs into the next measurement
    nor escapes this one's CPU count: no connection still open on its port
    (a request not answered yet) and nothing the runtime reports as pending
    (`Spin.pending`: components still running after answering, or still
    waiting for the database). Under lock contention, e.g. SQLite's
    rollback journal with a 5 s busy timeout, that can take seconds.
    Returns the time waited."""
    port = urllib.parse.urlsplit(base).port
    t0 = time.time()
    while (open_connections(port) or runtime.pending()) and time.time() - t0 < limit:
        time.sleep(0.02)
    time.sleep(0.05)  # work between the last check and its end (a commit, a log line)
    return round(time.time() - t0, 2)


def summarise(runs):
    ok = [r for r in runs if "rps" in r]
    if not ok:
        return {"runs": runs}
    rps = [r["rps"] for r in ok]
    cell = {
        "rps": round(statistics.median(rps), 1),
        "rps_min": round(min(rps), 1),
        "rps_max": round(max(rps), 1),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in ok), 3),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in ok), 3),
        "errors": sum(r["errors"] for r in ok),
        "runs": runs,
    }
    cpu = [r["cpu_ms_per_req"] for r in ok if "cpu_ms_per_req" in r]
    if cpu:
        cell["cpu_ms"] = round(statistics.median(cpu), 4)
    settle = [r["settle_s"] for r in ok if "settle_s" in r]
    if settle:
        cell["settle_s_max"] = max(settle)
    if any("rows_ok" in r for r in ok):
        cell["rows_ok"] = all(r.get("rows_ok", True) for r in ok)
    return cell


def warm(runtime, t):
    try:
        wrk(runtime, t, max(CONNECTIONS), WARMUP_SECONDS, f"{runtime.name}-warm")
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        t.fail(f"warm-up: {e}")


def measure(runtime, targets, seconds, repeats):
    live = [t for t in targets if t.status == "ok"]
    if not runtime.fresh_per_measurement:
        log(f"{runtime.name}: warming up {len(live)} targets")
        for t in live:
            warm(runtime, t)
        live = [t for t in live if t.status == "ok"]
    runs = {(t.id, c): [] for t in live for c in CONNECTIONS}
    # Repeats are interleaved (all targets, then all again), so a noisy
    # minute on a shared machine spreads over every target, not one.
    for rep in range(repeats):
        log(f"{runtime.name}: round {rep + 1}/{repeats} ({len(live) * len(CONNECTIONS)} × {seconds} s)")
        for t in live:
            if t.status != "ok":
                continue  # failed in an earlier round; its runs stop there
            if runtime.fresh_per_measurement:
                # See Workers.fresh_per_measurement.
                try:
                    runtime.restart()
                except RuntimeError as e:
                    t.fail(f"runtime did not restart: {str(e).splitlines()[0]}")
                    continue
                for u in live:
                    u.base = runtime.base_for(u)
                warm(runtime, t)
                if t.status != "ok":
                    continue
            for c in CONNECTIONS:
                try:
                    runs[(t.id, c)].append(wrk(runtime, t, c, seconds, f"{runtime.name}-{rep}-{c}"))
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    runs[(t.id, c)].append({"error": str(e)})
    for t in live:
        if t.status != "ok":
            continue
        t.cells = {str(c): summarise(runs[(t.id, c)]) for c in CONNECTIONS}
        if any("rps" not in v for v in t.cells.values()):
            t.fail("wrk could not measure it (see latest.json)")


# --- a drop, simulated -----------------------------------------------------------------------


def drop(runtime, targets, spec, total):
    """`total` signups (each a new address) for one page at `connections`
    connections, as when a drop opens: throughput, latency, answers by
    status, and the rows actually stored, which must equal the 2xx answers.
    On a freshly started runtime (Workers; the Spin host keeps running),
    after the route's own check. Bounded by `max_seconds`."""
    conns = spec.get("connections", 64)
    limit = spec.get("max_seconds", 45)
    res = {"route": spec["route"], "requests": total, "connections": conns, "max_seconds": limit,
           "status": "ok", "note": ""}
    t = next((x for x in targets if x.kind == "route" and x.id == spec["route"]), None)
    if t is None or t.status != "ok":
        res["status"] = "skipped" if t is None or t.status == "skipped" else "failed"
        res["note"] = f"route {spec['route']}: {t.note}" if t else f"route {spec['route']} is not in routes.json"
        return res
    if runtime.fresh_per_measurement:
        try:
            runtime.restart()
        except RuntimeError as e:
            res["status"], res["note"] = "failed", f"runtime did not restart: {str(e).splitlines()[0]}"
            return res
        for u in targets:
            if u.status == "ok":
                u.base = runtime.base_for(u)
    problem = verify(runtime, t)
    if problem:
        res["status"], res["note"] = "failed", f"check before the drop: {problem}"
        return res
    threads = max(1, min(conns, os.cpu_count() or 1, total))  # every thread gets a share of at least one
    env = {**wrk_env(runtime, t, threads, f"{t.id}-{runtime.name}-drop-{t.offset}"),
           "BENCH_TOTAL": str(total), "BENCH_LUA_DIR": str(BENCH / "wrk")}
    rows_sql = t.expect.get("rows")
    before = count_rows(runtime, rows_sql) if rows_sql else None
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{limit}s", "--timeout", "10s",
           "-s", str(BENCH / "wrk" / "drop.lua"), t.base + (t.path or "/")]
    log(f"{runtime.name}: drop: {total} × {t.method} {t.path or '(paths)'} at {conns} connections (at most {limit} s)")
    pids = runtime.server_pids()
    cpu0 = cpu_seconds(pids)
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(limit + 30, p.kill)  # wrk stops itself at -d; this is for a wrk that hangs
    watchdog.start()
    lines, done_threads, stalled = [], 0, 0
    try:
        for line in p.stdout:
            lines.append(line)
            if line.startswith("BENCH-THREAD-DONE"):
                done_threads += 1
                stalled += "stalled" in line
                if done_threads == threads:
                    p.send_signal(signal.SIGINT)  # wrk ends its run early on SIGINT and reports
        stderr = p.stderr.read()
        p.wait()
    finally:
        watchdog.cancel()
    res["settle_s"] = settle_server(runtime, t.base)
    cpu1 = cpu_seconds(pids)
    result = next((l for l in lines if l.startswith("BENCH-RESULT ")), None)
    counts = next((l for l in lines if l.startswith("BENCH-DROP ")), None)
    if result is None or counts is None:
        res["status"], res["note"] = "failed", f"wrk failed ({p.returncode}): {stderr.strip() or ''.join(lines)[-500:]}"
        return res
    r = json.loads(result.split(" ", 1)[1])
    d = json.loads(counts.split(" ", 1)[1])
    t.offset = r["next_offset"]
    secs = r["duration_us"] / 1e6
    statuses = {k: d["statuses"][k] for k in sorted(d["statuses"])}
    ok = sum(n for k, n in statuses.items() if k.startswith("2"))
    socket_errors = {k: v for k, v in r["errors"].items() if k != "status" and v}
    res.update({
        # wrk re-sends on a new connection when one breaks before its answer
        # (a read error), so `sent` can exceed `requests`; the drop is done
        # when `requests` answers are in.
        "finished": d["answered"] >= total,
        "sent": d["sent"],
        "answered": d["answered"],
        "seconds": round(secs, 2),
        "rps": round(d["answered"] / secs, 1) if secs else None,
        "p50_ms": r["latency_us"]["p50"] / 1000,
        "p99_ms": r["latency_us"]["p99"] / 1000,
        "max_ms": r["latency_us"]["max"] / 1000,
        "statuses": statuses,
        "ok": ok,
        "socket_errors": socket_errors,
        "stalled_threads": stalled,
    })
    if cpu0 is not None and cpu1 is not None and d["answered"]:
        res["server_cpu_s"] = round(cpu1 - cpu0, 3)
        res["cpu_ms_per_req"] = round((cpu1 - cpu0) * 1000 / d["answered"], 4)
    if rows_sql:
        # Components that write after answering have finished (settle_server).
        # Every 2xx must have its row; a request whose answer was lost with
        # its connection may have stored one too, but no more than those.
        res["rows_stored"] = count_rows(runtime, rows_sql) - before
        res["rows_ok"] = ok <= res["rows_stored"] <= ok + max(0, d["sent"] - d["answered"])
    if not res["finished"]:
        res["note"] = (f"{total - d['answered']} of {total} never answered (the server dropped their connections)"
                       if stalled else f"unfinished: {d['answered']} of {total} answered within {limit} s")
    log(f"{runtime.name}: drop: {d['answered']} answers in {secs:.1f} s, statuses {statuses}, "
        f"rows {res.get('rows_stored')}")
    return res


# --- one-shot requests ----------------------------------------------------------------------


def descendant_named(pid, name):
    """The first process below `pid` whose command name is `name`."""
    found = descendants_named(pid, name)
    return found[0] if found else None


def descendants_named(pid, name):
    """Every process below `pid` whose command name is `name`, nearest first."""
    found = []
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append((int(stat.parent.name), comm))
    todo = [pid]
    while todo:
        for child, comm in children.get(todo.pop(0), []):
            if comm == name:
                found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pids):
    """CPU time the processes have used so far, user + system, summed:
    fields 14 and 15 (utime, stime) of /proc/<pid>/stat, which count every
    thread of the process, live or exited. None when there is no process
    or one has gone."""
    if not pids:
        return None
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        fields = text[text.rindex(")") + 2:].split()  # from field 3 (state) on
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def rss_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class RssPeak(threading.Thread):
    """Samples a process's resident set every `every` seconds until stopped."""

    def __init__(self, pid, every=0.02):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.before = rss_kb(pid)
        self.peak = self.before or 0
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(self.every):
            self.peak = max(self.peak, rss_kb(self.pid) or 0)

    def stop(self):
        self.done.set()
        self.join()
        self.peak = max(self.peak, rss_kb(self.pid) or 0)
        return self.peak


def oneshots(runtime, config, targets):
    """Requests too slow for wrk (the dashboard's CSV export of 100,000
    fans), and a latency figure for their cheap sibling: each sent `repeat`
    times, one after another, timed to the last byte, with the server
    process's peak RSS sampled meanwhile. Runs once the runtime is up and
    every target was checked."""
    by_id = {t.id: t for t in targets if t.kind == "route"}
    out = []
    for spec in config.get("oneshots", []):
        route = by_id.get(spec["route"])
        res = {"id": spec["id"], "title": spec["title"], "route": spec["route"], "rows": spec.get("rows"),
               "status": "ok", "note": "", "runs": []}
        q = spec.get("queries")
        if q:
            batches = -(-(spec["rows"] + 1) // q["batch"]) if q.get("batch") else 0
            res["queries"] = {"count": q["fixed"] + batches, "how": q["how"], "derived_from_code": True}
        out.append(res)
        if route is None or route.status != "ok":
            res["status"] = "skipped" if route is None or route.status == "skipped" else "failed"
            res["note"] = route.note if route else f"route {spec['route']} is not in routes.json"
            continue
        pid = runtime.server_pid()
        method = route.method
        path = spec.get("path", route.path)
        headers = {**runtime.client_headers, **route.headers}
        exp = spec.get("expect", {})
        log(f"{runtime.name}: {spec['id']}: {spec.get('repeat', 3)} × {method} {path}")
        for i in range(spec.get("repeat", 3)):
            u = urllib.parse.urlsplit(route.base)
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
            sampler = RssPeak(pid) if pid else None
            if sampler:
                sampler.start()
            t0 = time.perf_counter()
            try:
                conn.request(method, path, headers=headers)
                r = conn.getresponse()
                body = r.read()
                elapsed = time.perf_counter() - t0
                status, ctype = r.status, r.getheader("content-type", "")
            except (OSError, http.client.HTTPException) as e:
                res["status"], res["note"] = "failed", f"{method} {path}: {e!r}"
                break
            finally:
                conn.close()
                peak = sampler.stop() if sampler else None
            run = {"seconds": round(elapsed, 4), "bytes": len(body), "status": status, "content_type": ctype,
                   "crlf_lines": body.count(b"\r\n")}
            if sampler and sampler.before:
                run.update(rss_before_mb=round(sampler.before / 1024, 1), rss_peak_mb=round(peak / 1024, 1),
                           rss_delta_mb=round((peak - sampler.before) / 1024, 1))
            res["runs"].append(run)
            problem = None
            if status != exp.get("status", 200):
                problem = f"status {status}, expected {exp.get('status', 200)}: {body[:200]!r}"
            elif "content_type" in exp and ctype != exp["content_type"]:
                problem = f"Content-Type {ctype!r}, expected {exp['content_type']!r}"
            elif "crlf_lines" in exp and run["crlf_lines"] != exp["crlf_lines"]:
                problem = f"{run['crlf_lines']} CRLF lines, expected {exp['crlf_lines']}"
            elif "body_contains" in exp and exp["body_contains"].encode() not in body:
                problem = f"body lacks {exp['body_contains']!r}: {body[:200]!r}"
            if problem:
                res["status"], res["note"] = "failed", f"{method} {path} (request {i + 1}): {problem}"
                log(f"{runtime.name}: {spec['id']}: {problem}")
                break
        ok = res["runs"] if res["status"] == "ok" else []
        if ok:
            res["median_s"] = round(statistics.median(r["seconds"] for r in ok), 4)
            res["body_mb"] = round(statistics.median(r["bytes"] for r in ok) / 1e6, 2)
            deltas = [r["rss_delta_mb"] for r in ok if "rss_delta_mb" in r]
            if deltas:
                res["rss_delta_mb_max"] = max(deltas)
            res["rss_of"] = f"{'workerd' if runtime.name == 'workers' else 'spin-host'} (pid {pid})" if pid else None
    return out


# --- runtimes ----------------------------------------------------------------------------


class Process:
    """A child in its own process group, stopped by group id."""

    def __init__(self, cmd, log_path, **kw):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                  start_new_session=True, **kw)

    def alive(self):
        return self.p.poll() is None

    def tail(self, n=15):
        return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-n:])

    def stop(self):
        if self.alive():
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
            except ProcessLookupError:
                pass
        self.log.close()


class Workers:
    name = "workers"
    has_front_door = True
    # Local workerd keeps ~0.6 KB per request served in the isolate that
    # served it, so its GC pauses grow with traffic: on the bare JS 302
    # alone, from ~8 ms to ~150 ms over 260 000 requests. A Worker measured
    # after more traffic (the links isolate serves the landing page before
    # the redirect) would then show longer stalls, hence a worse p99 and
    # fewer req/s, for reasons that are not its own. So every measurement
    # (one target, one round) starts on a freshly started workerd, after
    # its warm-up; the state on disk carries over.
    fresh_per_measurement = True

    def __init__(self, config, secrets_path):
        self.config = config
        self.secrets_path = secrets_path
        self.dir = WORK / "workers"
        self.client_headers = config["clients"]["workers"]
        self.proc = None
        self.info = None

    def label(self):
        return ("local workerd (wrangler's, via the `miniflare` package), each Worker on its own direct socket: "
                "no wrangler dev proxy, no Miniflare entry Worker, no front door (its hop is measured separately)")

    def missing(self, f, crate):
        if not (ROOT / "functions" / f / "wrangler.toml").exists():
            return f"not deployable on Workers yet: functions/{f}/wrangler.toml is missing"
        if not (ROOT / "functions" / f / "build" / "index.js").exists():
            return f"not built yet: functions/{f}/build/index.js is missing"
        return None

    def wrangler(self, *args):
        return sh([str(ROOT / "node_modules" / ".bin" / "wrangler"), *args], cwd=ROOT)

    def start(self, functions, seed_sql):
        fresh_dir(self.dir)
        state = self.dir / "state"
        log("workers: applying migrations and seeds to a fresh local D1")
        t0 = time.time()
        self.wrangler("d1", "migrations", "apply", "DB", "--local", "-c", "wrangler.toml", "--persist-to", str(state))
        seed = self.dir / "seed.sql"
        seed.write_text(seed_sql)
        t1 = time.time()
        self.wrangler("d1", "execute", "DB", "--local", "-c", "wrangler.toml", "--persist-to", str(state), "--file", str(seed))
        self.startup = {"migrations_s": round(t1 - t0, 1), "seed_s": round(time.time() - t1, 1),
                        "seed_mb": round(len(seed_sql.encode()) / 1e6, 1)}
        self.cmd = ["node", str(BENCH / "workerd.mjs"), "--state", str(state), "--secrets", str(self.secrets_path)]
        for f in sorted(functions):
            self.cmd += ["--function", f]
        for k, v in self.config["settings"].items():
            self.cmd += ["--var", f"{k.upper()}={v}"]
        self.launch()

    def restart(self):
        self.stop()
        self.launch()

    def server_pid(self):
        """workerd itself, a child of bench/workerd.mjs (node): every Worker
        runs in that one process."""
        return descendant_named(self.proc.p.pid, "workerd") if self.proc and self.proc.alive() else None

    def pending(self):
        """Work the bench can see workerd still doing after its answers: none
        (its connections close when it has answered)."""
        return 0

    def server_pids(self):
        """Every workerd process below bench/workerd.mjs (there is one; its
        threads are counted with it). Not node: it only started workerd and
        sits idle while the direct sockets are measured."""
        return descendants_named(self.proc.p.pid, "workerd") if self.proc and self.proc.alive() else []

    def launch(self):
        self.proc = Process(self.cmd, self.dir / "workerd.log", cwd=ROOT)
        deadline = time.time() + 120
        while time.time() < deadline:
            text = Path(self.proc.log_path).read_text(errors="replace")
            m = re.search(r"^BENCH-READY (.*)$", text, re.M)
            if m:
                self.info = json.loads(m.group(1))
                return
            if not self.proc.alive():
                break
            time.sleep(0.2)
        raise RuntimeError(f"workerd did not start:\n{self.proc.tail()}")

    def worker_name(self, f):
        text = (ROOT / "functions" / f / "wrangler.toml").read_text()
        return tomllib.loads(text)["name"]

    def base_for(self, t):
        direct = self.info["direct"]
        if t.kind == "baseline":
            return direct.get(f"baseline-{t.spec['id']}")
        if t.kind == "hop":
            return direct.get(self.info["frontDoor"])
        return direct.get(self.worker_name(t.function))

    def db_path(self):
        d1 = self.dir / "state" / "v3" / "d1" / "miniflare-D1DatabaseObject"
        found = [p for p in d1.glob("*.sqlite") if p.name != "metadata.sqlite"]
        if len(found) != 1:
            raise RuntimeError(f"expected one D1 database in {d1}, found {len(found)}")
        return found[0]

    def stop(self):
        if self.proc:
            self.proc.stop()


class Spin:
    name = "spin"
    has_front_door = False
    # Every request gets a fresh instance: nothing builds up between
    # measurements.
    fresh_per_measurement = False

    def __init__(self, config, secrets_path):
        self.config = config
        self.secrets = read_kv_file(secrets_path)
        self.dir = WORK / "spin"
        self.client_headers = config["clients"]["spin"]
        # BENCH_SPIN_HOST: try another build of the host without copying it.
        self.host = Path(os.environ.get("BENCH_SPIN_HOST") or SPIN_HOST)
        self.manifest = tomllib.loads((ROOT / "spin.toml").read_text())
        self.proc = None
        self.base = None

    def label(self):
        host = self.host.relative_to(ROOT) if self.host.is_relative_to(ROOT) else self.host
        return f"{host} (the project's wasmtime Spin host), routes from spin.toml, on loopback"

    def component_for(self, crate):
        wasm = f"{crate.replace('-', '_')}.wasm"
        for name, comp in self.manifest.get("component", {}).items():
            if Path(str(comp.get("source", ""))).name == wasm:
                return name
        return None

    def missing(self, f, crate):
        if not self.component_for(crate):
            return f"not in spin.toml yet: no component for `{f}`"
        if not (ROOT / "target" / "wasm32-wasip2" / "release" / f"{crate.replace('-', '_')}.wasm").exists():
            return f"not built yet: target/wasm32-wasip2/release/{crate.replace('-', '_')}.wasm is missing"
        return None

    def bench_manifest(self, keep):
        """spin.toml with absolute paths, MaxMind's test database as the geo
        mount, only the components that were built, plus the baselines."""
        m = json.loads(json.dumps(self.manifest))
        comps = m.get("component", {})
        for name in list(comps):
            if name not in keep:
                del comps[name]
        for comp in comps.values():
            comp["source"] = str(ROOT / comp["source"])
            comp.pop("build", None)
            for f in comp.get("files", []):
                if isinstance(f, dict):
                    f["source"] = str(ROOT / ".cache" / "geo") if f["source"] == "data/geo" else str(ROOT / f["source"])
        triggers = m.get("trigger", {}).get("http", [])
        m.setdefault("trigger", {})["http"] = [t for t in triggers if t.get("component") in comps]
        baseline = ROOT / "target" / "wasm32-wasip2" / "release" / "bench_spin_baseline.wasm"
        if baseline.exists():
            comps["bench-baseline"] = {
                "source": str(baseline), "key_value_stores": ["default"], "sqlite_databases": ["default"],
            }
            m["trigger"]["http"].append({"route": "/bench/...", "component": "bench-baseline"})
        return toml_dump(m)

    def start(self, functions, seed_sql):
        fresh_dir(self.dir)
        keep = {self.component_for(c) for c in functions.values()} - {None}
        manifest = self.dir / "spin.toml"
        manifest.write_text(self.bench_manifest(keep))
        seed = self.dir / "seed.sql"
        seed.write_text(seed_sql)
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        cmd = [str(self.host), "--from", str(manifest), "--listen", f"127.0.0.1:{port}",
               "--state-dir", str(self.dir / "data")]
        # As a Spin deployment starts (README): WAL first, then the migrations.
        for migration in [ROOT / "schema" / "spin" / "wal.sql", *sorted((ROOT / "schema").glob("*.sql"))]:
            cmd += ["--sqlite", f"@{migration}"]
        cmd += ["--sqlite", f"@{seed}"]
        # No per-request logging during the bench, where the host offers that.
        usage = subprocess.run([str(self.host), "--help"], capture_output=True, text=True)
        if "--quiet" in usage.stdout + usage.stderr:
            cmd.append("--quiet")
        env = dict(os.environ)
        env.pop("RUST_LOG", None)
        for k, v in {**self.secrets, **self.config["settings"], **self.config.get("spin_settings", {})}.items():
            env[f"SPIN_VARIABLE_{k.upper()}"] = v
        t0 = time.time()
        self.proc = Process(cmd, self.dir / "spin-host.log", cwd=ROOT, env=env)
        deadline = time.time() + 180
        while time.time() < deadline:
            if not self.proc.alive():
                break
            try:
                request(self.base, "GET", "/", {}, "", timeout=2)
                # The host applies the migrations and seeds, then compiles
                # the components, before it answers: one figure for all.
                self.startup = {"start_with_seeds_s": round(time.time() - t0, 1),
                                "seed_mb": round(len(seed_sql.encode()) / 1e6, 1)}
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"spin-host did not start:\n{self.proc.tail()}")

    def server_pid(self):
        return self.proc.p.pid if self.proc and self.proc.alive() else None

    def pending(self):
        """Guest SQLite connections the host has open: one per component
        instance that opened the database and has not finished, whether it
        has answered or not (the host keeps no connection of its own to
        sqlite_db.db). Read from the host's file descriptors."""
        pid = self.server_pid()
        if not pid:
            return 0
        n = 0
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}").endswith("/sqlite_db.db"):
                        n += 1
                except OSError:
                    pass
        except OSError:
            return 0
        return n

    def server_pids(self):
        """The host itself (started directly, no shell): one process, every
        request on its threads."""
        pid = self.server_pid()
        return [pid] if pid else []

    def base_for(self, t):
        if t.kind == "baseline" and not (ROOT / "target" / "wasm32-wasip2" / "release" / "bench_spin_baseline.wasm").exists():
            return None
        return self.base

    def db_path(self):
        return self.dir / "data" / "sqlite_db.db"

    def stop(self):
        if self.proc:
            self.proc.stop()


def toml_dump(doc):
    """Enough TOML for a Spin manifest: tables as [headers], lists of tables
    inline."""

    def key(k):
        return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }"
        raise TypeError(f"cannot write {v!r} as TOML")

    out = []

    def table(t, prefix):
        for k, v in t.items():
            if not isinstance(v, dict):
                out.append(f"{key(k)} = {value(v)}")
        for k, v in t.items():
            if isinstance(v, dict):
                name = f"{prefix}.{key(k)}" if prefix else key(k)
                out.append(f"\n[{name}]")
                table(v, name)

    table(doc, "")
    return "\n".join(out) + "\n"


# --- one runtime, end to end ------------------------------------------------------------------


def run_runtime(runtime, config, functions, built, seconds, repeats, selected=None, drop_total=0):
    targets = plan_targets(config, runtime, functions, built, selected)
    live_functions = {t.function: functions[t.function] for t in targets if t.kind == "route" and t.status == "ok"}
    # Every built function is loaded, measured or not, as in a deployment.
    for f in built:
        if f in functions and not runtime.missing(f, functions[f]):
            live_functions.setdefault(f, functions[f])
    seeds = [(ROOT / "tools" / "seed-demo.sql").read_text(), (BENCH / "baseline.sql").read_text()]
    hooks = {}
    for t in targets:
        hook = t.spec.get("hook")
        if t.status == "ok" and hook and hook not in hooks:
            hooks[hook] = load_hook(hook)
    secrets = getattr(runtime, "secrets", None) or read_kv_file(runtime.secrets_path)
    t0 = time.time()
    for rel, mod in hooks.items():
        if hasattr(mod, "seed_sql"):
            routes = [t.spec for t in targets if t.kind == "route" and t.spec.get("hook") == rel]
            seeds.append(mod.seed_sql({"runtime": runtime.name, "root": ROOT, "secrets": secrets, "routes": routes}))
    info = {"path": runtime.label(), "load_start": [round(x, 2) for x in os.getloadavg()],
            "seed_sql_made_s": round(time.time() - t0, 1)}
    try:
        runtime.start(live_functions, "\n".join(seeds))
        info["startup"] = getattr(runtime, "startup", {})
    except Exception as e:  # noqa: BLE001 - reported, and the other runtime still runs
        runtime.stop()
        for t in targets:
            if t.status == "ok":
                t.fail(f"runtime did not start: {str(e).splitlines()[0]}")
        info["error"] = str(e)
        log(f"{runtime.name}: {e}")
        info["targets"] = [t.to_json() for t in targets]
        return info, targets
    try:
        for t in targets:
            if t.status != "ok":
                continue
            t.base = runtime.base_for(t)
            if not t.base:
                t.skip("not loaded in this runtime (no baseline component built?)")
                continue
            hook = t.spec.get("hook")
            if hook and hasattr(hooks[hook], "paths"):
                t.paths = hooks[hook].paths({"runtime": runtime.name, "root": ROOT, "secrets": secrets, "route": t.spec})
                t.paths_file = runtime.dir / f"paths-{t.id}.txt"
                t.paths_file.write_text("\n".join(t.paths) + "\n")
                t.path = ""
            problem = setup(runtime, t) or verify(runtime, t)
            if problem:
                t.fail(f"wrong answer: {problem}")
                log(f"{runtime.name}: {t.id}: {problem}")
            elif t.spec.get("rows_read"):
                t.rows_read = rows_read(runtime, t.spec["rows_read"])
        info["oneshots"] = oneshots(runtime, config, targets)
        info["other_cpu_before"] = cpu_busy()
        measure(runtime, targets, seconds, repeats)
        if drop_total and config.get("drop"):
            info["drop"] = drop(runtime, targets, config["drop"], drop_total)
    finally:
        runtime.stop()
    info["load_end"] = [round(x, 2) for x in os.getloadavg()]
    info["targets"] = [t.to_json() for t in targets]
    return info, targets


# --- report ------------------------------------------------------------------------------------


def kb(n):
    return f"{n / 1024:.1f} KB"


def ms(x):
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def ms_cell(x):
    return f"{x:.0f}" if x >= 100 else ms(x)


def ratio(route, base, c):
    try:
        return route["cells"][c]["rps"] / base["cells"][c]["rps"]
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def cpu_ratio(route, base, c):
    """Baseline CPU per request ÷ the route's: read like the req/s ratio
    (1.0× = as cheap as the baseline, 0.5× = twice its CPU per request)."""
    try:
        return base["cells"][c]["cpu_ms"] / route["cells"][c]["cpu_ms"]
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def cpu_ms(x):
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 10 else f"{x:.1f}"


def times(r):
    return f"{r:.2f}×" if r is not None else "—"


def goals(report, config):
    """Each goal of issue #16 in routes.json (`goals`), as measured in this
    run: per concurrency, the req/s ratio, the CPU ratio and, where the goal
    bounds it, the p99 ratio, and whether each holds. Numbers only: a missed
    goal is reported, never a failure."""
    out = []
    for g in config.get("goals", []):
        row = {"id": g["id"], "title": g["title"], "runtime": g["runtime"], "route": g["route"],
               "min_ratio": g["min_ratio"], "max_p99_ratio": g.get("max_p99_ratio"), "cells": {}, "status": "ok", "note": ""}
        out.append(row)
        rt = report["runtimes"].get(g["runtime"])
        by_id = {t["id"]: t for t in (rt or {}).get("targets", [])}
        t = by_id.get(g["route"])
        base = by_id.get(g.get("baseline") or (t or {}).get("baseline") or "")
        why = None
        if rt is None:
            why = f"{g['runtime']} was not run (BENCH_RUNTIMES)"
        elif rt.get("not_run"):
            why = rt["not_run"]
        elif t is None or t["status"] != "ok":
            why = f"{g['route']}: {t['status']}: {t['note']}" if t else f"no route {g['route']}"
        elif base is None or base["status"] != "ok":
            why = f"baseline {base['id']}: {base['status']}: {base['note']}" if base else "no baseline"
        if why:
            row["status"], row["note"] = "not measured", why
            continue
        row["baseline"] = base["id"]
        for c in map(str, g.get("connections", CONNECTIONS)):
            x, b = t["cells"].get(c, {}), base["cells"].get(c, {})
            cell = {"rps_ratio": ratio(t, base, c), "cpu_ratio": cpu_ratio(t, base, c)}
            if g.get("max_p99_ratio") is not None:
                cell["p99_ratio"] = x["p99_ms"] / b["p99_ms"] if x.get("p99_ms") is not None and b.get("p99_ms") else None
            missed, unknown = [], []
            for key, label, ok in (("rps_ratio", "req/s", lambda v: v >= g["min_ratio"]),
                                   ("cpu_ratio", "CPU", lambda v: v >= g["min_ratio"]),
                                   ("p99_ratio", "p99", lambda v: v <= g.get("max_p99_ratio", 0))):
                if key not in cell:
                    continue
                if cell[key] is None:
                    unknown.append(label)
                elif not ok(cell[key]):
                    missed.append(label)
                cell[key] = round(cell[key], 3) if cell[key] is not None else None
            cell["missed"], cell["unknown"] = missed, unknown
            cell["holds"] = None if unknown and not missed else not missed
            row["cells"][c] = cell
    return out


def goals_section(report):
    rows = report.get("goals") or []
    if not rows:
        return []
    lines = ["", "## Goals (#16)", "",
             "Each goal of issue #16 as measured in this run, per concurrency: **req/s** is the route's req/s ÷ its "
             "baseline's; **CPU** is the baseline's server CPU per request ÷ the route's (the server processes' own "
             "CPU counters, so it does not depend on how wrk shares the cores); **p99** is the route's p99 ÷ the "
             "baseline's. A row holds when every figure in it does. Reported, not enforced: `make bench` does not "
             "fail on a missed goal.", "",
             "| goal | c | req/s | CPU | p99 | holds |", "|---|--:|--:|--:|--:|---|"]
    for g in rows:
        if g["status"] != "ok":
            lines.append(f"| {g['title']} | | | | | not measured: {g['note']} |")
            continue
        for i, (c, x) in enumerate(g["cells"].items()):
            holds = ("yes" if x["holds"] else f"**no** ({', '.join(x['missed'])})") if x["holds"] is not None else \
                f"? ({', '.join(x['unknown'])} not measured)"
            p99 = times(x.get("p99_ratio")) if "p99_ratio" in x else ""
            lines.append(f"| {g['title'] if i == 0 else ''} | {c} | {times(x['rps_ratio'])} | {times(x['cpu_ratio'])} | {p99} | {holds} |")
    drops = [(name, rt["drop"]) for name, rt in report["runtimes"].items() if rt.get("drop")]
    if drops:
        parts = []
        for name, d in drops:
            label = runtime_label(name)
            if d["status"] != "ok":
                parts.append(f"{label} {d['status']} ({d['note']})")
                continue
            bad = sum(n for k, n in d["statuses"].items() if not k.startswith("2"))
            broken = sum(d["socket_errors"].values())
            rows = f"{d['rows_stored']:,}" if "rows_stored" in d else "?"
            parts.append(f"{label} {d['rps']:.0f} req/s, p50 {ms_cell(d['p50_ms'])} ms, p99 {ms_cell(d['p99_ms'])} ms, "
                         f"{bad} error answers{f' ({fmt_statuses(d)})' if bad else ''}, {broken} connection errors, "
                         f"{rows} rows stored for {d['ok']:,} 2xx answers"
                         + ("" if d["finished"] else f" ({d['note']})"))
        lines += ["", f"A drop, simulated ({drops[0][1]['requests']:,} signups, {drops[0][1]['connections']} connections; "
                      "details below): " + "; ".join(parts) + "."]
    return lines


def fmt_statuses(d):
    return ", ".join(f"{n:,} × {k}" for k, n in d["statuses"].items() if not k.startswith("2"))


def drop_section(report):
    drops = [(name, rt["drop"]) for name, rt in report["runtimes"].items() if rt.get("drop")]
    if not drops:
        return []
    first = drops[0][1]
    lines = ["", "## A drop, simulated", "",
             f"{first['requests']:,} signups for one capture page, each from a new address, sent by "
             f"{first['connections']} connections at once (`wrk -c{first['connections']}`, `bench/wrk/drop.lua`: exactly "
             f"{first['requests']:,} requests, then it stops), after the measurements and the route's check (workerd freshly "
             "restarted; the Spin host, which makes an instance per request, keeps running), "
             f"with the bench's raised rate limits; at most {first['max_seconds']} s. Rows stored are counted in the "
             "database afterwards and must equal the 2xx answers (plus at most the requests whose answer was lost "
             "with a broken connection, which wrk sends again: \"sent\" above \"answered\").", "",
             "| runtime | answered | seconds | req/s | p50 ms | p99 ms | max ms | CPU ms/req | answers by status | other errors | rows stored | = 2xx |",
             "|---|--:|--:|--:|--:|--:|--:|--:|---|---|--:|---|"]
    for name, d in drops:
        label = runtime_label(name)
        if d["status"] != "ok":
            lines.append(f"| {label} | {d['status']}: {d['note']} | | | | | | | | | | |")
            continue
        st = ", ".join(f"{k}: {n:,}" for k, n in d["statuses"].items()) or "—"
        if any(not k.startswith("2") for k in d["statuses"]):
            st = "⚠ " + st
        other = ", ".join(f"{k}: {n}" for k, n in d["socket_errors"].items()) or "none"
        eq = "—" if "rows_ok" not in d else ("yes" if d["rows_ok"] else "**no**")
        cpu = cpu_ms(d["cpu_ms_per_req"]) if "cpu_ms_per_req" in d else "—"
        answered = f"{d['answered']:,}" + ("" if d["finished"] else f" of {d['requests']:,} ⚠")
        if d["sent"] > d["answered"]:
            answered += f" ({d['sent']:,} sent)"
        rows = f"{d['rows_stored']:,}" if "rows_stored" in d else "—"
        lines.append(f"| {label} | {answered} | {d['seconds']:.1f} | {d['rps']:.0f} | {ms_cell(d['p50_ms'])} | {ms_cell(d['p99_ms'])} | "
                     f"{ms_cell(d['max_ms'])} | {cpu} | {st} | {other} | {rows} | {eq} |")
    return lines


def markdown(report):
    m = report["machine"]
    s = report["settings"]
    lines = [
        f"# Stagedoor bench — {report['generated']}",
        *goals_section(report),
        "",
        "## Run",
        "",
        f"- commit `{m['commit']}`{' + uncommitted changes' if m['dirty'] else ''}; `make bench` took {report['duration_s'] / 60:.1f} min",
        f"- machine: {m['cores']} cores, {m['cpu']}, {m['memory']}, Linux {m['kernel']}; "
        f"load average (1/5/15 min) at start {' / '.join(map(str, m['load_start']))}, at end {' / '.join(map(str, m['load_end']))}",
        f"- runtimes: workerd {m['tools']['workerd']} (from wrangler {m['tools']['wrangler']}), node {m['tools']['node']}; "
        f"Spin: the project's spin-host",
        f"- load: {m['tools']['wrk']}, on the same cores as the server; each cell is the median of {s['repeats']} runs of "
        f"{s['seconds']} s (rounds interleaved), after a {WARMUP_SECONDS} s warm-up (on Workers, each target's runs in a round "
        "start on a freshly started workerd); c=1 is `wrk -t1 -c1`, c=16 is `wrk -t2 -c16`",
        f"- rate limits raised for the bench's own instance only: signup_ip_limit={s['limits']['signup_ip_limit']}, "
        f"signup_page_limit={s['limits']['signup_page_limit']} (checked: 12 signups from one address all answer 200, "
        "above the default 10/600); every request carries a client address (and a `cf` location on Workers)",
        "- every target was checked before it was measured (status, Location, body, rows written); "
        "`× baseline` is route req/s ÷ its baseline's req/s at the same concurrency",
        "- **CPU ms/req**: CPU time (user + system) the server processes used during the run ÷ the requests wrk "
        "counted, from their own counters (`/proc/<pid>/stat`: every workerd process on Workers, the spin-host "
        "process on Spin), read right before each run and once the server has finished its requests' work after it, "
        "median over runs; `× baseline CPU` is the "
        "baseline's CPU per request ÷ the route's",
    ]
    if s.get("routes") not in (None, "all"):
        lines.append(f"- only the routes in BENCH_ROUTES were measured: {', '.join(s['routes'])}")
    other = {name: rt["other_cpu_before"] for name, rt in report["runtimes"].items() if "other_cpu_before" in rt}
    if other:
        lines.append("- CPU used by other work just before measuring (servers up, idle): "
                     + ", ".join(f"{name} {v:.0%}" for name, v in other.items()))
        if max(other.values()) > 0.25:
            lines.append("- ⚠ the machine was busy with other work: absolute numbers are pessimistic and noisy; "
                         "the ratios to baselines, measured in the same interleaved rounds, hold up better")
    lines += [
        "",
        "## Size",
        "",
        "| function | Workers .wasm | gzip -9 | JS glue | gzip -9 | Workers total gzip | Spin .wasm | gzip -9 |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in report["sizes"]:
        if not r["built"]:
            lines.append(f"| {r['function']} | not built yet (not in the Makefile's FUNCTIONS) | | | | | | |")
            continue
        w, j, sp = r.get("workers_wasm"), r.get("workers_js"), r.get("spin_wasm")
        cell = lambda x, k: kb(x[k]) if x else "—"
        total = (w["gzip"] if w else 0) + (j["gzip"] if j else 0)
        lines.append(f"| {r['function']} | {cell(w, 'raw')} | {cell(w, 'gzip')} | {cell(j, 'raw')} | {cell(j, 'gzip')} | "
                     f"{kb(total) if w else '—'} | {cell(sp, 'raw')} | {cell(sp, 'gzip')} |")
    for name, rt in report["runtimes"].items():
        lines += ["", f"## Throughput — {runtime_label(name)}", ""]
        if rt.get("not_run") or rt.get("error"):
            lines += [f"**Not measured:** {(rt.get('not_run') or rt['error']).splitlines()[0]}"]
            if not rt["targets"]:
                continue
            lines.append("")
        lines.append(f"Measured: {rt['path']}.")
        st = rt.get("startup") or {}
        if "seed_s" in st:
            lines.append(f"Fresh database: migrations {st['migrations_s']:.1f} s, seeds ({st['seed_mb']:.1f} MB of SQL, "
                         f"made in {rt.get('seed_sql_made_s', 0):.1f} s) {st['seed_s']:.1f} s through `wrangler d1 execute`.")
        elif "start_with_seeds_s" in st:
            lines.append(f"Start: {st['start_with_seeds_s']:.1f} s from launch to first answer, applying every migration and the seeds "
                         f"({st['seed_mb']:.1f} MB of SQL, made in {rt.get('seed_sql_made_s', 0):.1f} s) and compiling the components.")
        lines += [
            "",
            "| route | c=1 req/s | p50 ms | p99 ms | CPU ms/req | c=16 req/s | p50 ms | p99 ms | CPU ms/req | baseline "
            "| × baseline c=1 | c=16 | × baseline CPU c=1 | c=16 |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|",
        ]
        by_id = {t["id"]: t for t in rt["targets"]}
        notes = []
        noisy = backlog = False
        for t in rt["targets"]:
            if t["kind"] == "hop":
                continue
            name_cell = f"baseline: {t['title']}" if t["kind"] == "baseline" else t["title"]
            if t["status"] != "ok":
                notes.append(f"- {name_cell}: **{t['status']}** — {t['note']}")
                lines.append(f"| {name_cell} | {t['status']} | | | | | | | | | | | | |")
                continue
            cells = []
            for c in ("1", "16"):
                x = t["cells"][c]
                flag = f" ⚠{x['errors']} errors" if x.get("errors") else ""
                if x.get("rows_ok") is False:
                    flag += " ⚠rows missing"
                if x.get("rps_min") and x["rps_max"] / x["rps_min"] > NOISY:
                    flag += " †"
                    noisy = True
                if x.get("settle_s_max", 0) > SETTLE_NOTE:
                    flag += f" ‡{x['settle_s_max']:.0f} s"
                    backlog = True
                cells += [f"{x['rps']:.0f}{flag}", ms(x["p50_ms"]), ms(x["p99_ms"]),
                          cpu_ms(x["cpu_ms"]) if "cpu_ms" in x else "—"]
            base = by_id.get(t["baseline"]) if t["baseline"] else None
            if base is not None and base["status"] == "ok":
                extra = [base["title"], times(ratio(t, base, "1")), times(ratio(t, base, "16")),
                         times(cpu_ratio(t, base, "1")), times(cpu_ratio(t, base, "16"))]
            else:
                extra = [base["title"] + " (not measured)" if base else "—", "—", "—", "—", "—"]
            lines.append(f"| {name_cell} | " + " | ".join(cells + extra) + " |")
        # A hop whose route was skipped is listed with the route already.
        hops = [t for t in rt["targets"] if t["kind"] == "hop" and t["status"] != "skipped"]
        for hop in hops:
            direct = by_id.get(hop["id"].split("@")[0])
            lines += ["", "Front-door hop (router/index.js → service binding → function), same route:", "",
                      "| path | c=1 req/s | p50 ms | p99 ms | CPU ms/req | c=16 req/s | p50 ms | p99 ms | CPU ms/req |",
                      "|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
            if hop["status"] != "ok" or not direct or direct["status"] != "ok":
                lines.append(f"| {hop['title']} | {hop['status']}: {hop['note']} | | | | | | | |")
                continue
            for label, t in ((f"{hop['title']}, direct to the function's Worker", direct),
                             (f"{hop['title']}, through the front door", hop)):
                row = []
                for c in ("1", "16"):
                    x = t["cells"][c]
                    row += [f"{x['rps']:.0f}", ms(x["p50_ms"]), ms(x["p99_ms"]), cpu_ms(x["cpu_ms"]) if "cpu_ms" in x else "—"]
                lines.append(f"| {label} | " + " | ".join(row) + " |")
            d1, h1 = direct["cells"]["1"], hop["cells"]["1"]
            d16, h16 = direct["cells"]["16"], hop["cells"]["16"]
            lines += ["", f"The hop costs {h1['p50_ms'] - d1['p50_ms']:+.2f} ms at p50 with one connection and keeps "
                          f"{h1['rps'] / d1['rps']:.0%} (c=1) / {h16['rps'] / d16['rps']:.0%} (c=16) of the direct throughput."]
        if noisy:
            notes.append(f"- † the runs of this cell differ by more than {NOISY}× (min and max in latest.json): "
                         "the machine's load changed while it was measured")
        if backlog:
            notes.append("- ‡ N s: after a run of this cell the server needed up to N s to finish the work its requests "
                         "left (answers still owed, or components still running after answering, e.g. waiting for the "
                         f"database); the bench waits for that (at most {SETTLE_LIMIT:.0f} s) before the next run, and "
                         "counts its CPU in the cell's")
        if notes:
            lines += ["", *notes]
    lines += drop_section(report)
    lines += export_table(report)
    lines += rows_read_table(report)
    lines += page_sizes_table(report)
    lines += ["", "Chart: `bench/results/latest.png`; raw runs: `bench/results/latest.json`. How to read this: `bench/README.md`."]
    return "\n".join(lines) + "\n"


MARKS = "¹²³⁴⁵⁶⁷⁸⁹"


def export_table(report):
    rows = [(name, o) for name, rt in report["runtimes"].items() for o in rt.get("oneshots", [])]
    if not rows:
        return []
    lines = ["", "## Dashboard export", "",
             "One request at a time (too slow for wrk), each sent "
             f"{max(len(o['runs']) for _, o in rows) or 3} times after the runtime was up and checked; time to the last byte, "
             "median; peak RSS of the server process (workerd, which runs every Worker; spin-host) sampled every 20 ms, "
             "minus its RSS just before the request, the largest of the runs.", "",
             "| runtime | request | rows | median ms | body MB | peak RSS Δ MB | DB queries |", "|---|---|--:|--:|--:|--:|--:|"]
    hows = {}
    for name, o in rows:
        rt = runtime_label(name)
        q = o.get("queries", {})
        if q:
            hows.setdefault(q["how"], len(hows) + 1)
        qcell = f"{q['count']} {MARKS[hows[q['how']] - 1]}" if q else "—"
        if o["status"] != "ok":
            lines.append(f"| {rt} | {o['title']} | {o['status']}: {o['note']} | | | | {qcell} |")
            continue
        rss = f"{o['rss_delta_mb_max']:.1f}" if "rss_delta_mb_max" in o else "—"
        lines.append(f"| {rt} | {o['title']} | {o['rows']:,} | {ms_cell(o['median_s'] * 1000)} | {o['body_mb']:.2f} | {rss} | {qcell} |")
    for how, n in hows.items():
        lines.append("")
        lines.append(f"{MARKS[n - 1]} derived from the code's paging, not counted (the bench cannot count D1 queries): {how}; "
                     "plus one session write when the session was last seen over a minute before.")
    return lines


def runtime_label(name):
    return "Workers" if name == "workers" else "Spin"


def targets_with(report, key):
    """(runtime name, target) for every measured target that recorded `key`."""
    return [(name, t) for name, rt in report["runtimes"].items() for t in rt.get("targets", []) if t.get(key)]


def page_sizes_table(report):
    rows = targets_with(report, "page_bytes")
    if not rows:
        return []
    lines = ["", "## Page sizes", "",
             "The HTML each page route answered in its check, inline styles included (images are separate requests); "
             "the fan pages' limit is 15 KB.", "",
             "| runtime | page | bytes |", "|---|---|--:|"]
    for name, t in rows:
        lines.append(f"| {runtime_label(name)} | {t['title']} | {t['page_bytes']:,} |")
    return lines


def rows_read_table(report):
    rows = targets_with(report, "rows_read")
    if not rows:
        return []
    lines = ["", "## Rows read per view", "",
             "Counted on the runtime's database file after the check, one `count(*)` per statement over the "
             "index range it scans (bench.py `rows_read`); the session's own reads come on top.", "",
             "| runtime | view | rows read | per statement | statements |", "|---|---|--:|---|---|"]
    for name, t in rows:
        r = t["rows_read"]
        lines.append(f"| {runtime_label(name)} | {t['title']} | {r['total']:,} | "
                     f"{' + '.join(f'{n:,}' for n in r['per_statement'])} | {r['how']} |")
    return lines


def chart(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    for name, rt in report["runtimes"].items():
        by_id = {t["id"]: t for t in rt["targets"]}
        rows = [t for t in rt["targets"] if t["kind"] == "route" and t["status"] == "ok"]
        if rows:
            panels.append((name, rows, by_id))
    if not panels:
        return False
    fig, axes = plt.subplots(len(panels), 2, figsize=(12, 1.2 + 1.1 * max(len(p[1]) for p in panels) * len(panels)),
                             squeeze=False)
    for i, (name, rows, by_id) in enumerate(panels):
        for j, c in enumerate(("1", "16")):
            ax = axes[i][j]
            labels = [t["title"] for t in rows]
            ys = range(len(rows))
            route = [t["cells"][c]["rps"] for t in rows]
            base = [by_id[t["baseline"]]["cells"][c]["rps"] if t["baseline"] in by_id and by_id[t["baseline"]]["status"] == "ok" else 0
                    for t in rows]
            ax.barh([y + 0.2 for y in ys], route, height=0.4, color="#d9480f", label="route")
            shown = [(y, b) for y, b in zip(ys, base) if b]
            ax.barh([y - 0.2 for y, _ in shown], [b for _, b in shown], height=0.4, color="#adb5bd", label="its baseline")
            floor = by_id.get("redirect")
            if floor and floor["status"] == "ok":
                ax.axvline(floor["cells"][c]["rps"], color="#495057", linestyle="--", linewidth=0.8,
                           label="302, no storage (platform floor)")
            for y, r, b, t in zip(ys, route, base, rows):
                ax.text(r, y + 0.2, f" {r:.0f}" + (f" ({r / b:.2f}×)" if b else ""), va="center", fontsize=8)
                if b:
                    ax.text(b, y - 0.2, f" {b:.0f} {by_id[t['baseline']]['title']}", va="center", fontsize=7, color="#495057")
            ax.set_yticks(list(ys), labels, fontsize=8)
            ax.invert_yaxis()
            ax.set_xscale("log")
            ax.set_xlabel("requests/s (median, log scale)")
            ax.set_title(f"{'Workers (workerd direct)' if name == 'workers' else 'Spin host'} — {c} connection{'s' if c != '1' else ''}",
                         fontsize=10)
            top = max(route + base + ([floor["cells"][c]["rps"]] if floor and floor["status"] == "ok" else []))
            ax.set_xlim(min(v for v in route + base if v) / 2, top * 6)
            if i == 0 and j == 0:
                ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Stagedoor bench {report['generated']} · {report['machine']['cores']} cores · commit {report['machine']['commit']}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


# --- main ----------------------------------------------------------------------------------------


def main():
    started = time.time()
    seconds = int(os.environ.get("BENCH_SECONDS", "3"))
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    wanted = os.environ.get("BENCH_RUNTIMES", "workers spin").split()
    config = json.loads((BENCH / "routes.json").read_text())
    selected = set(os.environ.get("BENCH_ROUTES", "").split())
    unknown = selected - {r["id"] for r in config["routes"]}
    if unknown:
        sys.exit(f"bench: BENCH_ROUTES: no route {', '.join(sorted(unknown))} in routes.json")
    drop_total = int(os.environ.get("BENCH_DROP", (config.get("drop") or {}).get("requests", 0)))
    functions = discover_functions()
    built_env = os.environ.get("BENCH_FUNCTIONS")
    built = set(built_env.split()) if built_env is not None else {
        f for f in functions if (ROOT / "functions" / f / "build" / "index.js").exists()}
    secrets_path = ROOT / ".wrangler" / "dev-secrets"
    if not secrets_path.exists():
        sys.exit("bench: .wrangler/dev-secrets is missing: run `make secrets`")
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)

    report = {
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "settings": {"seconds": seconds, "repeats": repeats, "connections": list(CONNECTIONS),
                     "warmup_seconds": WARMUP_SECONDS, "limits": config["settings"],
                     "routes": sorted(selected) or "all", "drop": {**(config.get("drop") or {}), "requests": drop_total}},
        "functions": sorted(functions),
        "built": sorted(built),
        "sizes": sizes(functions, built),
        "runtimes": {},
    }
    runtimes = []
    if "workers" in wanted:
        runtimes.append(Workers(config, secrets_path))
    if "spin" in wanted:
        runtimes.append(Spin(config, secrets_path))
    failed = False
    for rt in runtimes:
        if rt.name == "spin" and not rt.host.exists():
            # Not an error: the host is being written; the report says so.
            report["runtimes"]["spin"] = {"path": rt.label(), "targets": [],
                                          "not_run": f"{rt.label().split(' ')[0]} is not built yet (`make spin-host`)"}
            continue
        info, targets = run_runtime(rt, config, functions, built, seconds, repeats, selected, drop_total)
        report["runtimes"][rt.name] = info
        failed |= any(t.status == "failed" for t in targets) or bool(info.get("error"))
        failed |= any(o["status"] == "failed" for o in info.get("oneshots", []))
        # Wrong answers under load: 4xx/5xx, or good answers with no row.
        failed |= any(r.get("error_detail", {}).get("status") or r.get("rows_ok") is False
                      for t in targets for cell in t.cells.values() for r in cell.get("runs", []))
        # The drop: a failed check, or rows that do not match the 2xx answers
        # (a signup lost or stored twice). Its error answers (503s when the
        # database stays locked past the busy timeout, say) and its speed are
        # what it measures: reported, not a failure.
        d = info.get("drop") or {}
        failed |= d.get("status") == "failed" or d.get("rows_ok") is False
    report["goals"] = goals(report, config)
    report["machine"]["load_end"] = [round(x, 2) for x in os.getloadavg()]
    report["duration_s"] = round(time.time() - started + float(os.environ.get("BENCH_BUILD_SECONDS", "0")), 1)

    md = markdown(report)
    (RESULTS / "latest.md").write_text(md)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=1) + "\n")
    try:
        drawn = chart(report, RESULTS / "latest.png")
    except ImportError:
        drawn = False
        log("matplotlib is missing (run `bench/tools.sh`): no chart")
    print(md)
    log(f"wrote bench/results/latest.md, latest.json{', latest.png' if drawn else ''} in {time.time() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
