#!/usr/bin/env python3
"""Shrinks fuzz/corpus/<target>/ to a small set with the same edge coverage.

    fuzz/cap_corpus.py <target> [extra corpus dirs...]   (after `cargo +nightly fuzz build`)

`cargo fuzz cmin` keeps every input that adds a libFuzzer *feature* (edges
times hit-count buckets), which after a long run is hundreds of files. This
keeps fewer: the hand-written seeds (any file whose name is not a 40-hex
hash) always, then, greedily, the input that covers the most edges not yet
covered (ties: more new features, then smaller), until every edge the inputs
reach is covered or the cap is hit. Coverage is measured per input with
libFuzzer's own merge (one process per input, so a few ms each), so "edge"
means what `cov:` counts. Chosen inputs are written under their SHA-1 (as
libFuzzer names them); the rest are deleted.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

MAX_FILES = 50
MAX_BYTES = 200 * 1024
HASH_NAME = re.compile(r"^[0-9a-f]{40}$")


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    target, extra = sys.argv[1], sys.argv[2:]
    fuzz = os.path.dirname(os.path.abspath(__file__))
    corpus = os.path.join(fuzz, "corpus", target)
    binary = os.path.join(fuzz, "target", "x86_64-unknown-linux-gnu", "release", target)
    if not os.access(binary, os.X_OK):
        print(f"{binary}: not built; run `cargo +nightly fuzz build {target}` first", file=sys.stderr)
        return 2

    files = sorted(os.path.join(d, n) for d in [corpus, *extra] for n in os.listdir(d) if os.path.isfile(os.path.join(d, n)))
    data, edges, features = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(files):
            with open(path, "rb") as f:
                data[i] = f.read()
            edges[i], features[i] = measure(binary, path, tmp)
    named = [i for i, p in enumerate(files) if os.path.dirname(p) == corpus and not HASH_NAME.match(os.path.basename(p))]
    chosen = list(named)
    got_edges = set().union(*(edges.get(i, set()) for i in chosen))
    got_features = set().union(*(features.get(i, set()) for i in chosen))
    size = sum(len(data[i]) for i in chosen)
    seen = {hashlib.sha1(data[i]).hexdigest() for i in chosen}
    candidates = [i for i in data if i not in chosen]
    while len(chosen) < MAX_FILES:
        best = max(
            (i for i in candidates if size + len(data[i]) <= MAX_BYTES and hashlib.sha1(data[i]).hexdigest() not in seen),
            key=lambda i: (len(edges.get(i, set()) - got_edges), len(features.get(i, set()) - got_features), -len(data[i])),
            default=None,
        )
        if best is None or not edges.get(best, set()) - got_edges:
            break
        chosen.append(best)
        candidates.remove(best)
        seen.add(hashlib.sha1(data[best]).hexdigest())
        got_edges |= edges.get(best, set())
        got_features |= features.get(best, set())
        size += len(data[best])

    all_edges = set().union(*edges.values()) if edges else set()
    keep_named = {os.path.basename(files[i]) for i in named}
    for name in os.listdir(corpus):
        if name not in keep_named:
            os.remove(os.path.join(corpus, name))
    for i in chosen:
        if i not in named:
            with open(os.path.join(corpus, hashlib.sha1(data[i]).hexdigest()), "wb") as f:
                f.write(data[i])
    print(f"{target}: {len(chosen)} files ({len(named)} seeds), {size} bytes; edges {len(got_edges)}/{len(all_edges)} of {len(files)} inputs")
    return 0


def measure(binary, path, tmp):
    """Edges (COV) and features (FT) of one input: a libFuzzer merge of that
    input alone writes them all to its control file (a merge of many lists
    only what each input adds to those before it)."""
    one, out, control = (os.path.join(tmp, n) for n in ("one", "out", "control"))
    for d in (one, out):
        shutil.rmtree(d, ignore_errors=True)
        os.mkdir(d)
    if os.path.exists(control):
        os.remove(control)  # an existing control file would resume the last merge
    shutil.copy(path, one)
    run = subprocess.run([binary, "-merge=1", f"-merge_control_file={control}", out, one], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if run.returncode != 0:
        sys.exit(f"{path}: the target failed on this input:\n{run.stderr[-4000:]}")
    edges, features = set(), set()
    with open(control) as f:
        for line in f:
            kind, _, rest = line.partition(" ")
            if kind in ("COV", "FT"):
                (edges if kind == "COV" else features).update(rest.split()[1:])
    return edges, features


if __name__ == "__main__":
    sys.exit(main())
