#!/usr/bin/env bash
# Train on a Cloud TPU pod slice: the same command runs on every host (gcloud --worker=all);
# jax.distributed finds the coordinator from the TPU metadata (SCALING_DISTRIBUTED=auto).
# usage: launch/tpu_pod.sh TPU_NAME ZONE PRESET WORKDIR [extra scaling train args]
# WORKDIR must be a filesystem every host mounts (e.g. Filestore/NFS): run directories are
# written with local file APIs.
set -euo pipefail
tpu=$1 zone=$2 preset=$3 workdir=$4
shift 4
repo=${SCALING_REPO:-https://github.com/scaling-dev/scaling.git}
gcloud compute tpus tpu-vm ssh "$tpu" --zone "$zone" --worker=all --command "
  set -e
  [ -d scaling ] || git clone $repo scaling
  cd scaling && python3 -m pip install -q -e '.[tpu]'
  SCALING_DISTRIBUTED=auto scaling train --config $preset --workdir $workdir $*
"
