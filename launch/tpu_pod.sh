#!/usr/bin/env bash
# Train on a Cloud TPU VM slice: install one git revision on every host, start one
# `scaling train` process per host (jax.distributed finds the coordinator, host 0, from the
# TPU metadata: SCALING_DISTRIBUTED=auto), then copy every host's log back here.
#
# usage: launch/tpu_pod.sh --tpu NAME --zone ZONE --workdir DIR [options] [-- TRAIN ARGS...]
#   --tpu NAME        the TPU VM (`gcloud compute tpus tpu-vm list`)
#   --zone ZONE       its zone, e.g. us-east5-a
#   --workdir DIR     run directory on a filesystem every host mounts (NFS/Filestore)
#   --project ID      gcloud project (default: gcloud's configured one)
#   --repo URL        git URL of this project (default: this checkout's `origin` remote)
#   --rev REV         revision to install (default: this checkout's HEAD, which must be pushed)
#   --dir PATH        checkout on each host (default: scaling, under the login's home)
#   --logs DIR        where host logs are collected (default: logs/<tpu>)
#   --dry-run         print the commands, run nothing
# TRAIN ARGS go to `scaling train` (e.g. --config gpt3-1.3b --set mesh.tensor=4).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
die() { echo "tpu_pod.sh: $*" >&2; exit 2; }

tpu="" zone="" workdir="" project="" repo="" rev="" dir="scaling" logs="" dry=0
while [ $# -gt 0 ]; do
  case $1 in
    --tpu) tpu=${2:?}; shift 2 ;;
    --zone) zone=${2:?}; shift 2 ;;
    --workdir) workdir=${2:?}; shift 2 ;;
    --project) project=${2:?}; shift 2 ;;
    --repo) repo=${2:?}; shift 2 ;;
    --rev) rev=${2:?}; shift 2 ;;
    --dir) dir=${2:?}; shift 2 ;;
    --logs) logs=${2:?}; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[ -n "$tpu" ] && [ -n "$zone" ] && [ -n "$workdir" ] || die "--tpu, --zone and --workdir are required"
here=$(cd "$(dirname "$0")/.." && pwd)
[ -n "$repo" ] || repo=$(git -C "$here" remote get-url origin 2>/dev/null) \
  || die "no --repo and this checkout has no 'origin' remote; pass --repo URL"
[ -n "$rev" ] || rev=$(git -C "$here" rev-parse HEAD) || die "cannot read HEAD; pass --rev"
logs=${logs:-logs/$tpu}

q() {  # the words, shell-quoted where needed (for remote command strings and --dry-run)
  local w out=""
  for w in "$@"; do
    if [[ $w =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then out+="$w "; else out+="'${w//\'/\'\\\'\'}' "; fi
  done
  printf '%s' "${out% }"
}
run() { if [ "$dry" = 1 ]; then q "$@"; echo; else "$@"; fi; }
train_args=$(q "$@")
ssh_all() {
  run gcloud compute tpus tpu-vm ssh "$tpu" --zone "$zone" ${project:+--project "$project"} \
    --worker=all --command "$1"
}

# 1. the same revision on every host
ssh_all "set -e; [ -d $(q "$dir") ] || git clone -q $(q "$repo") $(q "$dir"); cd $(q "$dir"); \
git fetch -q origin; git checkout -q --detach $(q "$rev"); python3 -m pip install -q -e '.[tpu]'"
# 2. one process per host, each logging to <dir>/logs/<hostname>.log
status=0
ssh_all "cd $(q "$dir") && mkdir -p logs && SCALING_DISTRIBUTED=auto python3 -m scaling.cli \
train --workdir $(q "$workdir") $train_args > logs/\$(hostname).log 2>&1" || status=$?
# 3. every host's log, whatever the outcome
run mkdir -p "$logs"
run gcloud compute tpus tpu-vm scp --zone "$zone" ${project:+--project "$project"} \
  --worker=all --recurse "$tpu:$dir/logs/*" "$logs/"
exit "$status"
