#!/usr/bin/env bash
# GPU check on a real NVIDIA host: prints the GPU memory ledger and the GPU preflight as the
# product sees them. Two modes (chosen automatically; force one with --mode):
#   product  a Docker engine answers: the console and its local agent run here, an app on a CUDA
#            image (GPU_CHECK_IMAGE) allocates GPU memory, and the ledger, preflight and the app's
#            GPU usage are read back through the API.
#   local    no Docker engine, but nvidia-smi and a GPU: the agent's own ledger/preflight code
#            (agent/dist/gpu-check.mjs, one file, needs only `node`) runs against the real
#            nvidia-smi and /proc while a local python3+torch process holds 1 GiB of GPU memory.
# Usage: scripts/gpu-check.sh [--mode auto|product|local]     (NODE=/path/to/node to pick a node)
# Takes well under two minutes; exit code 0 when the allocating process was found in the ledger.
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=auto
[ "${1:-}" = "--mode" ] && MODE="${2:-auto}"
NODE="${NODE:-node}"
GPU_CMD_DEFAULT='import torch, time
x = torch.empty(2**30, dtype=torch.uint8, device="cuda")
print("allocated", flush=True)
time.sleep(int(__import__("os").environ.get("HOLD_S", "25")))'

if ! command -v "$NODE" >/dev/null 2>&1; then echo "gpu-check: no node found (set NODE=/path/to/node)"; exit 1; fi
if [ "$MODE" = auto ]; then
  if docker info >/dev/null 2>&1 && [ -d node_modules ]; then MODE=product; else MODE=local; fi
fi
echo "== gpu-check mode: $MODE ($( [ "$MODE" = local ] && echo 'no Docker engine: agent ledger/preflight code against the real nvidia-smi' || echo 'console + local agent + Docker'))"
echo "== host: $(hostname) · $(uname -sr) · node $("$NODE" --version)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,driver_version,memory.total,memory.used --format=csv,noheader || echo "nvidia-smi: not found"

if [ "$MODE" = local ]; then
  BUNDLE=agent/dist/gpu-check.mjs
  if [ ! -f "$BUNDLE" ]; then
    if command -v npm >/dev/null && [ -d node_modules ]; then npm run build -w agent >/dev/null || exit 1; else echo "gpu-check: $BUNDLE is missing (run npm run build -w agent where npm is)"; exit 1; fi
  fi
  BASELINE=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | tr -d ' ' | paste -sd, -)
  echo "== starting a GPU process: python3 + torch, 1 GiB on cuda:0"
  LOG=$(mktemp)
  ${GPU_CHECK_PYTHON:-python3} -c "${GPU_CHECK_CMD:-$GPU_CMD_DEFAULT}" >"$LOG" 2>&1 &
  PID=$!
  trap 'kill $PID 2>/dev/null; rm -f "$LOG"' EXIT
  for _ in $(seq 1 120); do grep -q allocated "$LOG" && break; kill -0 $PID 2>/dev/null || break; sleep 0.5; done
  if ! grep -q allocated "$LOG"; then echo "gpu-check: the GPU process did not allocate:"; cat "$LOG"; echo "== ledger and preflight without it:"; "$NODE" "$BUNDLE"; exit 1; fi
  echo "pid $PID allocated 1 GiB"
  "$NODE" "$BUNDLE" --expect-pid "$PID" --expect-mib 1024 --image-cuda "${GPU_CHECK_IMAGE_CUDA:-12.6}" ${BASELINE:+--baseline "$BASELINE"}
  RC=$?
  echo "== cgroup of pid $PID:"; cat "/proc/$PID/cgroup" 2>/dev/null | head -5
  case $RC in 0) R=OK ;; 3) R="PARTIAL: the allocation is not listed under this shell's pid (see above)" ;; *) R="FAILED (exit $RC)" ;; esac
  echo "== result: $R"
  exit $RC
fi

# product mode: build if needed, then the TypeScript driver starts the console and runs the app.
[ -f build/server.mjs ] && [ -f agent/dist/dcc-agent.mjs ] || npm run build >/dev/null || exit 1
exec npx tsx scripts/gpu-check-product.ts
