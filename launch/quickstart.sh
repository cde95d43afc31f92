#!/usr/bin/env bash
# Fresh machine -> a trained gpt-tiny: venv, install, train with 8 simulated CPU devices.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
pip install -q -e .
scaling --host-devices 8 train --config gpt-tiny "$@"
