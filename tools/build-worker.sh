#!/usr/bin/env bash
# Builds one function as a Worker into functions/NAME/build/:
# index.js (tools/worker-shim.js + wasm-bindgen glue, bundled) and
# index_bg.wasm.
#   tools/build-worker.sh NAME [--no-opt]
# Tools: cargo, wasm-bindgen (must equal the library version), wasm-opt and
# esbuild (`make tools` installs them); other paths through WASM_BINDGEN_BIN,
# WASM_OPT_BIN and ESBUILD_BIN.
set -euo pipefail
name=$1
opt=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
: "${WASM_BINDGEN_BIN:=$HOME/.cargo/bin/wasm-bindgen}" "${WASM_OPT_BIN:=$root/node_modules/.bin/wasm-opt}" \
  "${ESBUILD_BIN:=$root/node_modules/.bin/esbuild}"

# The env var makes wasm-bindgen's macros use js-sys's futures, as the
# worker crate expects (worker-build sets it the same way).
# Run inside the package: `-p` from the workspace root unifies features
# across members and gave a larger module.
(cd "functions/$name" && WASM_BINDGEN_USE_JS_SYS=1 cargo build --quiet --lib --release \
  --target wasm32-unknown-unknown --features cloudflare)

out=functions/$name/build
tmp=$out.tmp
rm -rf "$tmp"
# Reset and abort support are what worker-shim.js recovers with.
"$WASM_BINDGEN_BIN" "target/wasm32-unknown-unknown/release/$name.wasm" --out-dir "$tmp" \
  --target module --out-name index --no-typescript \
  --experimental-reset-state-function --force-enable-abort-handler 2> >(grep -v target_features >&2)

if [ "$opt" != --no-opt ]; then
  # The features workerd supports, named (not --all-features) so that no
  # newer encoding slips in.
  "$WASM_OPT_BIN" "$tmp/index_bg.wasm" -o "$tmp/index_bg.opt.wasm" -O \
    --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
    --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling
  mv "$tmp/index_bg.opt.wasm" "$tmp/index_bg.wasm"
fi

cp tools/worker-shim.js "$tmp/shim.js"
# A Worker gets a `scheduled` handler only when the module exports one
# (shared::export_scheduled!); elsewhere the shim's block is dropped.
scheduled=false
if grep -q '^export function scheduled(' "$tmp/index.js"; then scheduled=true; fi
(cd "$tmp" && "$ESBUILD_BIN" --log-level=warning --external:./index_bg.wasm --external:'cloudflare:*' \
  --define:STAGEDOOR_SCHEDULED=$scheduled --format=esm --bundle --minify ./shim.js --outfile=index.js --allow-overwrite)
# The glue imports the module in the source phase; the runtime takes the
# plain import of a .wasm as the compiled module.
sed -i 's/import source /import /' "$tmp/index.js"
rm -rf "$tmp/shim.js" "$tmp/snippets"
rm -rf "$out"
mv "$tmp" "$out"
