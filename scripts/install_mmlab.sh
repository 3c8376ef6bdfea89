#!/usr/bin/env bash
# Install the OpenMMLab stack (MMDetection + MMPose) into an existing virtual environment, for
# the `mmpose` detect/keypoints2d backend. Run through `make install-mmlab`.
#
# Why a script and not one `pip install`: mmcv 2.1.0 (mmdet 3.3.0 and mmpose 1.3.2 need
# mmcv<2.2) has no wheels for current torch, and its setup.py forces -std=c++17 while torch
# 2.14's headers need C++20. The script downloads the pinned sdist (sha256-checked), switches
# the standard to C++20, and builds a wheel with the compiled ops into a wheel cache, so only the
# first install on a machine pays the ~20 min build. xtcocotools is built from source because
# its binary wheel is compiled against numpy 1. mmpose is installed without its declared
# dependencies (chumpy does not build on Python 3.11 and is not used for 2D inference); the
# dependencies it does use are pinned in requirements-mmlab.txt.
set -euo pipefail

PY="${1:?usage: install_mmlab.sh <venv python>}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
WHEELHOUSE="${CABINLIFT_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/cabinlift/wheels}"
MMCV_VERSION=2.1.0
MMCV_SHA256=d387bcab66b467479b6660310e23746cfc79c6e57acf04094680adb499a5cd3f
XTCOCOTOOLS_VERSION=1.14.3
TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')"
mkdir -p "$WHEELHOUSE"
# torch's extension builder finds ninja (parallel compile) on PATH.
export PATH="$(dirname "$PY"):$PATH"

# Build tools for the two source builds (no build isolation: they compile against this torch
# and numpy).
"$PY" -m pip install --quiet -r "$HERE/requirements-mmlab-build.txt"

# The mmcv wheel is specific to the torch it was compiled against: keep one per torch version.
MMCV_CACHE="$WHEELHOUSE/torch-$TORCH_VERSION"
mkdir -p "$MMCV_CACHE"
if ! ls "$MMCV_CACHE"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
  echo "install_mmlab: building mmcv $MMCV_VERSION with ops against torch $TORCH_VERSION" \
       "(once per machine; ~25 min on 2 cores)" >&2
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
  "$PY" "$HERE/scripts/fetch_sdist.py" mmcv "$MMCV_VERSION" "$MMCV_SHA256" "$WORK/mmcv.tar.gz"
  tar -xzf "$WORK/mmcv.tar.gz" -C "$WORK"
  SRC="$WORK/mmcv-$MMCV_VERSION"
  grep -q -- "-std=c++17" "$SRC/setup.py" || {
    echo "install_mmlab: $SRC/setup.py has no -std=c++17 flag to replace" >&2; exit 1; }
  sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    "$PY" -m pip wheel --no-build-isolation --no-deps --wheel-dir "$WORK/dist" "$SRC"
  mv "$WORK"/dist/mmcv-*.whl "$MMCV_CACHE/"
fi
"$PY" -m pip install --quiet --no-deps "$MMCV_CACHE"/mmcv-"$MMCV_VERSION"-*.whl

if ! ls "$WHEELHOUSE"/xtcocotools-"$XTCOCOTOOLS_VERSION"-*.whl >/dev/null 2>&1; then
  "$PY" -m pip wheel --quiet --no-build-isolation --no-deps --no-binary xtcocotools \
    --wheel-dir "$WHEELHOUSE" "xtcocotools==$XTCOCOTOOLS_VERSION"
fi
"$PY" -m pip install --quiet --no-deps "$WHEELHOUSE"/xtcocotools-"$XTCOCOTOOLS_VERSION"-*.whl

# The rest: pinned, pure-Python or binary wheels; --no-deps keeps chumpy (and mmpose's other
# training-only requirements) out, requirements-mmlab.txt lists what inference needs.
"$PY" -m pip install --quiet --no-deps -r "$HERE/requirements-mmlab.txt"
"$PY" -c "import mmcv.ops, mmdet, mmpose; print('install_mmlab: mmcv', mmcv.__version__, \
'mmdet', mmdet.__version__, 'mmpose', mmpose.__version__)"
