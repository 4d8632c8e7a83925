#!/usr/bin/env bash
# Download the wheels benchmarks/gpu_check.py needs on an NVIDIA GPU machine without network access:
# Python 3.12, x86-64 Linux (manylinux), with torch (CUDA) and numpy already installed.
#
# Run on a machine with PyPI access, from anywhere in the checkout:
#
#     bash benchmarks/gpu_wheels.sh            # -> .whl/ at the repository root, then prints the sizes
#     OPTIONAL=0 bash benchmarks/gpu_wheels.sh # the required wheels only
#     DEST=/elsewhere bash benchmarks/gpu_wheels.sh
#     LIMIT_MIB=100 bash benchmarks/gpu_wheels.sh  # the size one copy may carry (default 56 of 64 MiB)
#     SPLIT=1 bash benchmarks/gpu_wheels.sh        # also cut wheels over LIMIT_MIB into NAME.whl.part-NN files;
#                                                  # join them on the GPU machine: cat NAME.whl.part-* > NAME.whl
#
# On the GPU machine (see the docstring of benchmarks/gpu_check.py):
#
#     pip install --no-index --no-deps --target /tmp/site .whl/*.whl
#     export PYTHONPATH=/tmp/site:$PWD
#     python -m reenact.benchmarks.gpu_check --out gpu-check
#
# The versions are the ones the project is developed and tested with. Everything is downloaded
# with --no-deps: the lists below are the complete set of what the check imports besides torch,
# numpy and torch's own dependencies. .whl/ holds a .gitignore, so git never picks the wheels up.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${DEST:-$ROOT/.whl}"
PY="${PYTHON:-python3}"
PYVER="${PYVER:-3.12}"
OPTIONAL="${OPTIONAL:-1}"
SPLIT="${SPLIT:-0}"
LIMIT_MIB="${LIMIT_MIB:-56}"   # per batch of wheels: 64 MiB less room for the checkout itself

# what the check cannot run without
REQUIRED=(
  # face tracking; mediapipe imports matplotlib and OpenCV when it loads
  mediapipe==1.2.3 absl-py==2.5.1 flatbuffers==25.12.19 certifi==2026.5.20
  # OpenCV: the headless build of the installed version (the project uses only core functions; the
  # contrib build is 85 MiB, over what one copy may carry); OPENCV=... picks another
  "${OPENCV:-opencv-python-headless==5.1.0.95}"
  matplotlib==3.11.2 contourpy==1.3.3 cycler==0.12.1 fonttools==4.68.0 kiwisolver==1.5.1 pyparsing==3.3.2
  python-dateutil==2.9.0.post0 six==1.17.0 packaging==26.2 pillow==12.3.0
  # video decode and encode
  av==18.1.0
  # ONNX export and the parity checks every engine build runs (ONNX Runtime on the CPU)
  onnx==1.23.2 ml_dtypes==0.7.0 protobuf==7.36.2 onnxruntime==1.32.0
  # shipped weights, progress bars, the built-in target photo
  safetensors==0.8.0 tqdm==4.70.1 scikit-image==0.26.0 lazy-loader==0.6
)
# what the check measures or reports when present, and records as missing otherwise
OPTIONAL_WHEELS=(
  # TensorRT for RTX: builds engines; runs them on RTX-class GPUs only (on others the check records the error)
  tensorrt-rtx-cu13-bindings==1.7.1.116 tensorrt-rtx-cu13-libs==1.7.1.116
  # cuda-python: CUDA error checks after each TensorRT engine call
  cuda-python==13.4.4 cuda-bindings==13.4.4 cuda-core==1.2.2 cuda-pathfinder==1.9.1
)
# Not here: NVIDIA TensorRT (pip install tensorrt) and onnxruntime-gpu; their wheels are far larger than
# what travels easily. Where the GPU machine has them installed, the check finds and uses them.

mkdir -p "$DEST"
printf '*\n' > "$DEST/.gitignore"

download() {
  "$PY" -m pip download --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$DEST" "$@"
}

failed=()
for spec in "${REQUIRED[@]}"; do
  download "$spec" >/dev/null || failed+=("$spec")
done
opt_failed=()
if [ "$OPTIONAL" = "1" ]; then
  for spec in "${OPTIONAL_WHEELS[@]}"; do
    download "$spec" >/dev/null || opt_failed+=("$spec")
  done
fi

if [ "$SPLIT" = "1" ]; then
  for whl in "$DEST"/*.whl; do
    if [ "$(stat -c %s "$whl")" -gt $((LIMIT_MIB * 1048576)) ]; then
      split -b "${LIMIT_MIB}M" -d "$whl" "$whl.part-"
      rm "$whl"
      echo "split $(basename "$whl") into $(ls "$whl".part-* | wc -l) parts; join: cat $(basename "$whl").part-* > $(basename "$whl")"
    fi
  done
fi

# sizes: each wheel, required and optional totals, and batches that fit LIMIT_MIB each
"$PY" - "$DEST" "$LIMIT_MIB" "${OPTIONAL_WHEELS[*]}" <<'EOF'
import re
import sys
from pathlib import Path

dest, limit = Path(sys.argv[1]), float(sys.argv[2])
optional = {re.split(r"[=<>]", s)[0].lower().replace("-", "_") for s in sys.argv[3].split()}
def dist(p):
    return p.name.split("-")[0].lower().replace("-", "_")
wheels = sorted([*dest.glob("*.whl"), *dest.glob("*.whl.part-*")], key=lambda p: -p.stat().st_size)
mib = {p: p.stat().st_size / 2**20 for p in wheels}
req = [p for p in wheels if dist(p) not in optional]
opt = [p for p in wheels if dist(p) in optional]
for p in wheels:
    print(f"{mib[p]:8.1f} MiB  {p.name}{'  (optional)' if p in opt else ''}")
tot_r, tot_o = sum(mib[p] for p in req), sum(mib[p] for p in opt)
print(f"{tot_r:8.1f} MiB  required ({len(req)} files)")
print(f"{tot_o:8.1f} MiB  optional ({len(opt)} files: TensorRT for RTX, cuda-python)")
print(f"{tot_r + tot_o:8.1f} MiB  total in {dest}")
if tot_r + tot_o > 64:
    print(f"WARNING: more than 64 MiB. Copy and install them in batches into the same --target folder "
          f"(the optional ones last, or not at all), each batch at most {limit:.0f} MiB:")
    batches = []
    for p in sorted(req, key=lambda p: -mib[p]) + sorted(opt, key=lambda p: -mib[p]):
        for b in batches:
            if (b["opt"] == (p in opt)) and b["mib"] + mib[p] <= limit:
                b["files"].append(p); b["mib"] += mib[p]; break
        else:
            batches.append({"files": [p], "mib": mib[p], "opt": p in opt})
    for i, b in enumerate(batches, 1):
        over = "  (one wheel over the limit on its own: SPLIT=1 cuts it)" if b["mib"] > limit else ""
        print(f"  batch {i}{' (optional)' if b['opt'] else ''}, {b['mib']:.1f} MiB{over}: "
              + " ".join(p.name for p in b["files"]))
EOF

if [ ${#failed[@]} -gt 0 ]; then
  echo "ERROR: no $PYVER manylinux x86_64 wheel could be downloaded for: ${failed[*]}" >&2
  exit 1
fi
if [ ${#opt_failed[@]} -gt 0 ]; then
  echo "warning: optional wheels not downloaded: ${opt_failed[*]}" >&2
fi
