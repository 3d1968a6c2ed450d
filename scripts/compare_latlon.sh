#!/usr/bin/env bash
# Issue 12's comparison on the lat-lon case, as docs/results.md reports it: the embedded lat-lon
# default's data, IDM and discriminator (scripts/make_latlon_model.sh), a day-of-year conditioned VDM of
# the IDM's U-Net family and training settings trained from scratch (both by scripts/make_vdm_model.sh),
# and `climdiff experiment compare` at the default's sampler settings under a protocol reduced to fit
# one CPU core in about an hour: 10 forecast starts x 5 members x 10 leads, one-year runs (the test
# split's length) of 2 members per method, no century runs.
# Usage: bash scripts/compare_latlon.sh [WORK_DIR]   (about 3 hours on 2 CPU cores; re-running it
# continues an interrupted run)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-compare-latlon-work}
BUNDLE="$work/latlon32-vdm.bundle" bash scripts/make_vdm_model.sh latlon "$work"
climdiff experiment compare --data "$work/precip32.zarr" --out "$work/compare" \
    --idm "$work/idm" --disc "$work/disc" --vdm "$work/vdm" \
    --sampler-steps 20 --guidance 3 --guidance-sigma-max 5 --churn 0 \
    --long-days 365 --long-members 2 --century-members 0 --starts 10 --members 5 --leads 10 --time-chunk 73 --threads 1
