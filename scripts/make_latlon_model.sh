#!/usr/bin/env bash
# Reproduce the embedded lat-lon default model, climdiff/assets/latlon32.bundle, with climdiff's own
# pipeline: 12 years of daily precipitation from the moist barotropic generator on the 32 x 64 grid
# (docs/latlon_generator.md), an IDM of the same small family as the turbulence default (pole padding,
# area-weighted loss), a discriminator trained over the sampler's whole noise range, both conditioned on
# the day of the year (without it the emulated seasonal cycle had a tenth of the generator's amplitude
# at a random phase: docs/benchmarks.md), negatives that never copy a conditioning day and made-up
# ones, the last day plus another day's change, so that it judges the direction of a change and not
# only its size (12000 steps; with them the emulated days are 6 % too wet instead of 30 %:
# docs/benchmarks.md, "Where the guided days go wrong"), and a 20-step sampler without churn guided
# with lambda = 3 at sigma <= 5 (`climdiff tune-guidance` scored 3 above 6; no churn coupled the days
# more for less wetness),
# integrated by DPM-Solver++(2M) (as good as Heun's 20 steps at about half the network calls).
# Usage: [BUNDLE=OUT] [GUIDANCE=L] bash scripts/make_latlon_model.sh [WORK_DIR]   (about 2 hours on
# 2 CPU cores; re-running it continues an interrupted run)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-latlon-model-work}
guidance=${GUIDANCE:-3}
mkdir -p "$work"
source scripts/steps.sh
bundle=${BUNDLE:-climdiff/assets/latlon32.bundle}
step "$work/precip32.zarr" data latlon --years 12 --seed 0 --threads 1 --out "$work/precip32.zarr"
step "$work/idm" train idm --data "$work/precip32.zarr" --out "$work/idm" --config scripts/latlon_idm.toml --day-of-year --threads 1
step "$work/disc" train disc --data "$work/precip32.zarr" --out "$work/disc" --disc-sigma-max 80 --negatives no-copies --day-of-year \
    --foreign-changes 0.5 --steps 12000 --threads 1
climdiff bundle --idm "$work/idm" --disc "$work/disc" --data "$work/precip32.zarr" \
    --out "$bundle" --name latlon32 --steps 20 --churn 0 --solver dpmpp_2m --guidance "$guidance" --guidance-sigma-max 5 --overwrite
