#!/usr/bin/env bash
# Issue 12's comparison on the turbulence case, as docs/results.md reports it: the embedded turbulence
# default's data, IDM and discriminator (scripts/make_default_model.sh), a VDM of the IDM's U-Net family
# and training settings trained from scratch (both by scripts/make_vdm_model.sh), and `climdiff
# experiment compare` at the default's sampler settings under a protocol reduced to fit one CPU core in
# about an hour: 10 forecast starts x 5 members x 10 leads, two-year runs of 2 members per method, no
# century runs.
# Usage: bash scripts/compare_turbulence.sh [WORK_DIR]   (about 2 hours on 2 CPU cores; re-running it
# continues an interrupted run)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-compare-turbulence-work}
BUNDLE="$work/turbulence32-vdm.bundle" bash scripts/make_vdm_model.sh turbulence "$work"
climdiff experiment compare --data "$work/turb32.zarr" --out "$work/compare" \
    --idm "$work/idm" --disc "$work/disc" --vdm "$work/vdm" \
    --sampler-steps 20 --guidance 50 --guidance-sigma-max 5 \
    --long-days 730 --long-members 2 --century-members 0 --starts 10 --members 5 --leads 10 --time-chunk 73
