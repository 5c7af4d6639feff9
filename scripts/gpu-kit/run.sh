#!/bin/sh
# The GPU kit's entry: runs on a bare x86-64 Linux host with sh, tar, gzip and python3 alone (no node,
# no npm, no xz tool, no network). Unpacks the kit's parts with python3, makes the kit's Vulkan loader
# visible after the system's, points Vulkan at the NVIDIA driver where one is mounted under
# /usr/local/nvidia, then hands over to run-kit.mjs: doctor, self-check, bench, PyTorch CUDA peer.
set -eu

usage() {
  cat <<'EOF'
Usage: run.sh [--quick] [--budget SECONDS] [--fixtures DIR] [--keep] OUTDIR

Runs the kit on this host and writes OUTDIR/results.json and OUTDIR/results.md:
  1. unpacks node, the bundles, dawn.node, sharp and the Vulkan loader into a work folder;
  2. prints `hvp doctor` (what Dawn sees);
  3. the self-check: every kernel family's GPU variants against float64 references, ResNet-18 and
     ViT-tiny forward and backward against the PyTorch fixtures;
  4. the bench: kernels and whole training steps (ResNet-50 SimSiam, ViT-S/16 DINO, the demo network),
     and the loader where the bench has that case;
  5. the same steps in PyTorch on CUDA (fp32 and autocast) where python3 has torch with CUDA.

Options:
  --quick           tiny shapes everywhere (a few minutes on a CPU adapter)
  --budget SECONDS  stop starting new steps when this is spent (default 480); what is skipped is listed
  --fixtures DIR    the PyTorch fixtures (default: ../test/fixtures beside the kit, in the checkout)
  --keep            keep the work folder (printed) instead of removing it
  -h, --help        show this help
EOF
}

QUICK=""
BUDGET=480
FIXTURES=""
KEEP=""
OUTDIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK="--quick" ;;
    --budget) [ $# -ge 2 ] || { echo "run.sh: --budget needs a number of seconds" >&2; exit 2; }; BUDGET="$2"; shift ;;
    --fixtures) [ $# -ge 2 ] || { echo "run.sh: --fixtures needs a folder" >&2; exit 2; }; FIXTURES="$2"; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$OUTDIR" ] || { echo "run.sh: one OUTDIR only (got $OUTDIR and $1)" >&2; exit 2; }; OUTDIR="$1" ;;
  esac
  shift
done
[ -n "$OUTDIR" ] || { usage >&2; exit 2; }
case "$BUDGET" in ''|*[!0-9]*) echo "run.sh: --budget must be a whole number of seconds, got '$BUDGET'" >&2; exit 2 ;; esac
command -v python3 >/dev/null 2>&1 || { echo "run.sh: python3 is needed to unpack the kit" >&2; exit 1; }

KIT=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
[ -n "$FIXTURES" ] || FIXTURES="$KIT/../test/fixtures"
START=$(python3 -c 'import time; print(int(time.time()))')

WORK=$(python3 -c 'import tempfile; print(tempfile.mkdtemp(prefix="hvp-kit-"))')
cleanup() { [ -n "$KEEP" ] || rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== unpacking the kit into $WORK"
python3 - "$WORK" "$KIT" <<'EOF'
import os, sys, tarfile, time
work, kit = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(kit)):
    if not (name.endswith('.tar.xz') or name.endswith('.tar.gz')):
        continue
    t0 = time.time()
    with tarfile.open(os.path.join(kit, name)) as t:
        # 'data' refuses links and paths leading out of the folder (Python 3.12+; older ones lack filters).
        t.extractall(work, **({'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}))
    print(f'  {name}: {time.time() - t0:.1f} s')
EOF
chmod 755 "$WORK/bin/node"

# The loader: the system's where it has one (it matches the system's driver), else the kit's.
LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$WORK/lib"
export LD_LIBRARY_PATH
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -z "${VK_ICD_FILENAMES:-}" ]; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/icd.d/nvidia_icd.json /usr/local/nvidia/etc/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$icd" ]; then
      VK_DRIVER_FILES="$icd"
      export VK_DRIVER_FILES
      echo "== Vulkan driver: $icd"
      break
    fi
  done
fi
# sharp decodes on libuv's thread pool, which Node sizes once at start (4 threads by default): one per core.
if [ -z "${UV_THREADPOOL_SIZE:-}" ]; then
  UV_THREADPOOL_SIZE=$(nproc 2>/dev/null || echo 4)
  export UV_THREADPOOL_SIZE
fi
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR="$WORK/xdg"
  mkdir -p "$XDG_RUNTIME_DIR"
  chmod 700 "$XDG_RUNTIME_DIR"
  export XDG_RUNTIME_DIR
fi

NOW=$(python3 -c 'import time; print(int(time.time()))')
LEFT=$((BUDGET - (NOW - START)))
echo "== node $("$WORK/bin/node" --version), budget ${BUDGET} s (${LEFT} s left after unpacking)"
set +e
"$WORK/bin/node" "$KIT/run-kit.mjs" --app "$WORK/app" --out "$OUTDIR" --budget "$LEFT" --fixtures "$FIXTURES" $QUICK
STATUS=$?
set -e
[ -z "$KEEP" ] || echo "== work folder kept: $WORK"
exit $STATUS
