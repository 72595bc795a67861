#!/usr/bin/env bash
# Create (or update) the project's virtual environment in ./.venv and install mmxsam into it.
#
#   bash tools/setup_env.sh
#
# Idempotent: a second run on the same machine only checks what is there (well under a minute);
# mmcv's compiled wheel is cached by pip, so even a fresh .venv on the same machine is quick.
#
# Environment variables:
#   VENV=path              where to create the environment (default: <repo>/.venv)
#   PYTHON=python3.11      interpreter that creates the venv (default: python3)
#   MMXSAM_KEEP_TORCH=1    do not install the CPU torch 2.13.0; keep the torch already in the venv
#                          (GPU users: create the venv with your CUDA torch first, or use
#                          VENV=/path/to/your/env). mmcv is then built against that torch; add
#                          FORCE_CUDA=1 to compile its CUDA ops.
#   MAX_JOBS=N             parallel compile jobs for mmcv (default: number of cores)
#   MMXSAM_EXTRAS=dev      extras of mmxsam to install (default: dev; e.g. "dev,demo")
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY_BOOT="${PYTHON:-python3}"
EXTRAS="${MMXSAM_EXTRAS:-dev}"
CONSTRAINTS="$ROOT/tools/constraints.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1

STEP="start"
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "setup_env.sh: FAILED at step: $STEP (exit $rc)" >&2; fi' EXIT
step() { STEP="$1"; echo "==> [setup] $1"; }

step "create virtual environment $VENV"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY_BOOT" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install -c "$CONSTRAINTS")

step "check interpreter (Python >= 3.9)"
"$PY" -c 'import sys; assert sys.version_info >= (3, 9), sys.version'

step "build tools (setuptools<82, wheel, ninja, psutil)"
# a newer pip is nice to have, not needed: every step below works with the venv's own pip (23.x)
"$PY" -m pip install -q --upgrade pip >/dev/null 2>&1 || echo "    (pip self-upgrade skipped)"
"${PIP[@]}" -q "setuptools>=77,<82" wheel ninja psutil

if [ "${MMXSAM_KEEP_TORCH:-0}" = "1" ]; then
    step "keep existing torch (MMXSAM_KEEP_TORCH=1)"
    "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
else
    step "torch 2.13.0 (CPU wheel)"
    "${PIP[@]}" -q "torch==2.13.0"
fi

step "refuse torchvision (no CPU build exists for torch 2.13; it breaks imports)"
if "$PY" -c 'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec("torchvision") else 1)' 2>/dev/null; then
    if ! "$PY" -c 'import torchvision' >/dev/null 2>&1; then
        echo "    a broken torchvision is installed; removing it"
        "$PY" -m pip uninstall -y -q torchvision
    fi
fi

step "mmengine 0.10.7"
"${PIP[@]}" -q "mmengine==0.10.7"

step "mmcv 2.1.0 with ops (compiled; ~8 min the first time, cached afterwards)"
if "$PY" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"; from mmcv.ops import MultiScaleDeformableAttention' >/dev/null 2>&1; then
    echo "    mmcv 2.1.0 with ops already installed"
else
    MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        "${PIP[@]}" --no-build-isolation "mmcv==2.1.0"
    "$PY" -c 'from mmcv.ops import MultiScaleDeformableAttention, point_sample' \
        || { echo "mmcv was installed but mmcv.ops does not import" >&2; exit 1; }
fi

step "mmdet, mmpretrain, transformers, peft, pycocotools, pycocoevalcap, scipy, pytest"
# pycocoevalcap (~100 MB: METEOR 1.5 and Stanford CoreNLP jars) scores GCG captions (METEOR, CIDEr); its
# only dependency is pycocotools. It runs those jars with Java, which this script does not install.
"${PIP[@]}" -q "mmdet==3.3.0" "mmpretrain==1.2.0" "transformers>=4.57,<4.58" "peft>=0.13" \
    pycocotools pycocoevalcap scipy "pytest>=7" "tokenizers>=0.22"
if ! command -v java >/dev/null 2>&1; then
    echo "    note: no 'java' on PATH; GCG caption metrics (METEOR/CIDEr) need a Java runtime," \
         "e.g. apt-get install default-jre-headless"
fi

step "deepspeed 0.18.9 (no build isolation: its build imports torch)"
if "$PY" -c 'import importlib.metadata as m; assert m.version("deepspeed") == "0.18.9"' >/dev/null 2>&1; then
    echo "    deepspeed 0.18.9 already installed"
else
    DS_BUILD_OPS=0 "${PIP[@]}" -q --no-build-isolation "deepspeed==0.18.9"
fi

step "web demo: gradio 6, playwright (drives Debian's chromium in the browser test)"
"${PIP[@]}" -q "gradio>=6.10,<6.11" "playwright>=1.50"
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "    installing Debian's chromium (headless browser for tests/test_apis/test_webui.py)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
                 apt-get install -y -q --no-install-recommends chromium >/dev/null; } \
            || echo "    WARNING: chromium could not be installed; the browser test of the web demo will fail"
    else
        echo "    note: no chromium; the web demo's browser test needs it (as root: apt-get install chromium)"
    fi
fi

step "panopticapi (panopticapi-lite, --no-deps: it pins numpy<2)"
"$PY" -m pip install -q --no-deps "panopticapi-lite==0.2.0"

step "mmxsam (editable, extras: $EXTRAS)"
"${PIP[@]}" -q --no-build-isolation -e "$ROOT[$EXTRAS]"

step "verify the stack"
"$PY" - <<'PYEOF'
import importlib.metadata as md
import mmcv, mmengine, mmdet, torch, transformers
from mmcv.ops import MultiScaleDeformableAttention  # noqa: F401  (compiled ops present)
import panopticapi.utils  # noqa: F401
import setuptools, pkg_resources  # noqa: F401  (mmengine's cross-package _base_ needs it)
import mmxsam
from mmdet.registry import MODELS
assert MODELS.get('XSAMSegConnector') is not None, 'mmxsam did not register into mmdet.MODELS'
print('    torch', torch.__version__, '| mmcv', mmcv.__version__, '| mmengine', mmengine.__version__,
      '| mmdet', mmdet.__version__, '| transformers', transformers.__version__,
      '| deepspeed', md.version('deepspeed'), '| mmxsam', mmxsam.__version__)
PYEOF
STEP="done"
echo "==> [setup] environment ready: $VENV (activate with: source $VENV/bin/activate)"
