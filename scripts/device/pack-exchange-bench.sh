#!/usr/bin/env bash
# Packs the exchange benchmarks for the borrowed 16-core machine (the `device` tool of the tool
# library), which has no node, no nats-server and no node_modules, and takes at most 64 MiB of
# ignored files along. Writes .device-bench/ (ignored by git):
#   app/bench/{exchange.bench,ceiling-sub,codec-work.bench}.js   esbuild bundles of libs/exchange's benches
#   dist/testing/member-process.js                              the member process the bench forks
#                                                               (members.ts finds it at ../../dist from app/bench)
#   bin/node.xz, bin/nats-server.xz                              this machine's binaries (x86-64)
#   run.sh                                                      a copy of scripts/device/run-exchange-bench.sh
# Then, with the device tool: run(command: "bash .device-bench/run.sh", carry: [".device-bench"]).
# Results come back under $OUT (docs/bench/exchange.md says how earlier runs were written up).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.device-bench
rm -rf "$out" && mkdir -p "$out/app/bench" "$out/dist/testing" "$out/bin"
esb="npx --no-install esbuild --bundle --platform=node --format=esm --target=node20 --log-level=warning"
# Bundled ESM still calls require() in a few CommonJS dependencies (nats): give it one.
banner="--banner:js=import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);"
$esb "$banner" libs/exchange/src/bench/exchange.bench.ts --outfile="$out/app/bench/exchange.bench.js"
$esb "$banner" libs/exchange/src/bench/ceiling-sub.ts --outfile="$out/app/bench/ceiling-sub.js"
$esb "$banner" libs/exchange/src/bench/codec-work.bench.ts --outfile="$out/app/bench/codec-work.bench.js"
$esb "$banner" libs/exchange/src/testing/member-process.ts --outfile="$out/dist/testing/member-process.js"
echo '{"type":"module"}' > "$out/package.json"
xz -T0 -3 -c "$(readlink -f "$(command -v node)")" > "$out/bin/node.xz"
xz -T0 -3 -c "${NATS_SERVER_BIN:-/usr/sbin/nats-server}" > "$out/bin/nats-server.xz"
cp scripts/device/run-exchange-bench.sh "$out/run.sh"
git rev-parse --short HEAD > "$out/commit"
du -sh "$out"
