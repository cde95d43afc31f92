#!/usr/bin/env bash
# Render launch/gke_jobset.yaml with this job's values, apply it, then stream every pod's log
# into <logs>/<name>.log (each pod also tees its own log to <workdir>/logs/ on the volume).
#
# usage: launch/gke_jobset.sh --name NAME --image IMAGE --pvc CLAIM [options] [-- TRAIN ARGS...]
#   --name NAME           JobSet name (DNS label), also the run directory's name
#   --image IMAGE         container image with python3, pip and git (e.g. python:3.11)
#   --pvc CLAIM           PersistentVolumeClaim every pod mounts (ReadWriteMany: Filestore)
#   --repo URL            git URL of this project (default: this checkout's `origin` remote)
#   --rev REV             revision every pod installs (default: this checkout's HEAD)
#   --mount PATH          where the claim is mounted (default: /runs)
#   --workdir DIR         run directory (default: <mount>/<name>)
#   --accelerator TYPE    node selector gke-tpu-accelerator (default: tpu-v5p-slice)
#   --topology TOPO       node selector gke-tpu-topology (default: 2x2x2)
#   --hosts N             TPU hosts (pods) per slice (default: 2, as v5p 2x2x2)
#   --chips-per-host N    TPU chips per host (default: 4)
#   --slices N            slices (default: 1; more: data parallel over DCN, set mesh.replica=N)
#   --max-restarts N      JobSet restarts after a failure (default: 0)
#   --context CTX         kubectl context (default: the current one)
#   --logs DIR            local log directory (default: logs)
#   --dry-run             print the rendered YAML and the commands, run nothing
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
die() { echo "gke_jobset.sh: $*" >&2; exit 2; }

NAME="" IMAGE="" PVC="" REPO="" REV="" MOUNT=/runs WORKDIR="" ACCELERATOR=tpu-v5p-slice
TOPOLOGY=2x2x2 HOSTS=2 CHIPS_PER_HOST=4 SLICES=1 MAX_RESTARTS=0 context="" logs=logs dry=0
while [ $# -gt 0 ]; do
  case $1 in
    --name) NAME=${2:?}; shift 2 ;;
    --image) IMAGE=${2:?}; shift 2 ;;
    --pvc) PVC=${2:?}; shift 2 ;;
    --repo) REPO=${2:?}; shift 2 ;;
    --rev) REV=${2:?}; shift 2 ;;
    --mount) MOUNT=${2:?}; shift 2 ;;
    --workdir) WORKDIR=${2:?}; shift 2 ;;
    --accelerator) ACCELERATOR=${2:?}; shift 2 ;;
    --topology) TOPOLOGY=${2:?}; shift 2 ;;
    --hosts) HOSTS=${2:?}; shift 2 ;;
    --chips-per-host) CHIPS_PER_HOST=${2:?}; shift 2 ;;
    --slices) SLICES=${2:?}; shift 2 ;;
    --max-restarts) MAX_RESTARTS=${2:?}; shift 2 ;;
    --context) context=${2:?}; shift 2 ;;
    --logs) logs=${2:?}; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[ -n "$NAME" ] && [ -n "$IMAGE" ] && [ -n "$PVC" ] || die "--name, --image and --pvc are required"
here=$(cd "$(dirname "$0")/.." && pwd)
[ -n "$REPO" ] || REPO=$(git -C "$here" remote get-url origin 2>/dev/null) \
  || die "no --repo and this checkout has no 'origin' remote; pass --repo URL"
[ -n "$REV" ] || REV=$(git -C "$here" rev-parse HEAD) || die "cannot read HEAD; pass --rev"
WORKDIR=${WORKDIR:-$MOUNT/$NAME}

q() {  # the words, shell-quoted where needed (for the container's command and --dry-run)
  local w out=""
  for w in "$@"; do
    if [[ $w =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then out+="$w "; else out+="'${w//\'/\'\\\'\'}' "; fi
  done
  printf '%s' "${out% }"
}
TRAIN_ARGS=$(q "$@")

render() {  # the template with ${VAR} replaced for the variables above; $$ -> $
  local text var
  text=$(<"$here/launch/gke_jobset.yaml")
  for var in NAME IMAGE PVC REPO REV MOUNT WORKDIR ACCELERATOR TOPOLOGY HOSTS CHIPS_PER_HOST \
             SLICES MAX_RESTARTS TRAIN_ARGS; do
    text=${text//"\${$var}"/${!var}}
  done
  printf '%s\n' "${text//\$\$/\$}"
}

kubectl=(kubectl ${context:+--context "$context"})
selector=jobset.sigs.k8s.io/jobset-name=$NAME
if [ "$dry" = 1 ]; then
  render
  echo "---"
  echo "$(q "${kubectl[@]}" apply -f -) < (the YAML above)"
  q "${kubectl[@]}" wait --for=condition=Ready pod -l "$selector" --timeout=3600s; echo
  echo "$(q "${kubectl[@]}" logs -f -l "$selector" --prefix --max-log-requests=$((HOSTS * SLICES))) > $(q "$logs/$NAME.log")"
  exit 0
fi
render | "${kubectl[@]}" apply -f -
mkdir -p "$logs"
"${kubectl[@]}" wait --for=condition=Ready pod -l "$selector" --timeout=3600s
"${kubectl[@]}" logs -f -l "$selector" --prefix --max-log-requests=$((HOSTS * SLICES)) \
  > "$logs/$NAME.log"
