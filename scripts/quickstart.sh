#!/usr/bin/env bash
# The main job on a fresh clone; filled in as the sweep lands (issue 5).
set -euo pipefail
build=${1:-build}
echo "quickstart: not yet wired"
