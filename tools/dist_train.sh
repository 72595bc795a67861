#!/usr/bin/env bash
# Distributed training with torchrun:  tools/dist_train.sh CONFIG GPUS [train.py args...]
# Multi-node: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=host PORT=29500 tools/dist_train.sh CONFIG 8
# On a machine without CUDA the processes use the gloo backend (CPU), e.g. for the tiny configs.
set -euo pipefail
CONFIG=${1:?usage: tools/dist_train.sh CONFIG GPUS [args...]}
GPUS=${2:?usage: tools/dist_train.sh CONFIG GPUS [args...]}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}" \
    || { rc=$?; echo "dist_train.sh: the job failed (exit code $rc); torchrun's 'Root Cause' above names the failing rank" >&2; exit $rc; }
