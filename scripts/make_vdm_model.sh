#!/usr/bin/env bash
# Reproduce an embedded video diffusion model (VDM), climdiff/assets/turbulence32-vdm.bundle or
# latlon32-vdm.bundle: the guided default's recipe (make_default_model.sh or make_latlon_model.sh, run
# into the same WORK_DIR, whose data the VDM shares), then a VDM of the IDM's U-Net family and training
# settings trained from scratch on windows of three days (the lat-lon one conditioned on the day of the
# year), bundled without churn at the solver and steps that docs/benchmarks.md ("Speed at equal quality",
# "A one-call solver") chose: 16 DPM-Solver++(2M) steps for turbulence (as calibrated as 16 Heun steps,
# which met issue 12's targets, at half the network calls), 20 Heun steps for lat-lon. The shipped
# turbulence bundle was made from the earlier Heun one by `climdiff bundle --from turbulence32-vdm
# --solver dpmpp_2m` (same networks; `climdiff info` shows it).
# Usage: [BUNDLE=OUT] bash scripts/make_vdm_model.sh turbulence|latlon [WORK_DIR]   (the default's
# recipe, then about 15 (turbulence) or 30 (lat-lon) minutes of VDM training on one core; re-running
# it continues an interrupted run)
set -euo pipefail
cd "$(dirname "$0")/.."
case ${1:-} in
turbulence)
    work=${2:-default-model-work}
    BUNDLE="$work/turbulence32.bundle" bash scripts/make_default_model.sh "$work"
    store="$work/turb32.zarr" name=turbulence32-vdm
    train=(--config scripts/default_idm.toml)
    sampler=(--steps 16 --churn 0 --solver dpmpp_2m)
    ;;
latlon)
    work=${2:-latlon-model-work}
    BUNDLE="$work/latlon32.bundle" bash scripts/make_latlon_model.sh "$work"
    store="$work/precip32.zarr" name=latlon32-vdm
    train=(--config scripts/latlon_idm.toml --day-of-year --threads 1)
    sampler=(--steps 20 --churn 0)
    ;;
*)
    echo "usage: bash scripts/make_vdm_model.sh turbulence|latlon [WORK_DIR]" >&2
    exit 2
    ;;
esac
source scripts/steps.sh
step "$work/vdm" train vdm --data "$store" --out "$work/vdm" "${train[@]}"
climdiff bundle --vdm "$work/vdm" --data "$store" --out "${BUNDLE:-climdiff/assets/$name.bundle}" \
    --name "$name" "${sampler[@]}" --overwrite
