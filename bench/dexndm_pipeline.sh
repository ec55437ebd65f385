#!/usr/bin/env bash
# DexNDM's whole pipeline for one base policy on the stand-in real hand (issue 21), resumable
# (a step whose output exists is skipped), then the residual-penalty sweep on the bench:
#   bench/dexndm_pipeline.sh GENERALIST.pt OUT_DIR [TRANSITIONS]
# The shipped models (2026-12-06): bench/dexndm_pipeline.sh assets/checkpoints/rl/rotate_generalist_leap.pt
# out/s13/ndm_it120 160000 with THREADS=1 LS=0.03 (about 25 minutes on one core), the
# joint-wise residual trained at --seed 0 and 1 and chosen on the stand-in with
# `dexteleop train dexndm-select R0 R1 --seed 100 --scales 0.5 0.75 1` (seed 0 at half size;
# BENCHMARKS.md, DexNDM, "The fine-tuned
# generalist"); the shipped files' path labels name their place in assets/.
# The default residual since the twelfth stop is a blend of the torque one (EFFORT=5) and the
# angle-only one: `dexteleop train dexndm-blend` (README, DexNDM).
# A real hand: replace --robot in the chaos-box step (e.g. dynamixel:port=/dev/ttyUSB0).
# Environment: THREADS (CPU threads per step, default 2), LS (the residual penalties to
# train and evaluate, default "0.001 0.03 0.3"; the shipped one is 0.03), CHAOS (chaos-box
# trajectories, default 300; the paper collects 4,000 per wrist orientation), HORIZON (the
# residual's rolled steps, `train dexndm-residual --horizon`, default 1: the paper's one step),
# EFFORT (0: the paper's angle-only models; W > 0: the NDMs also predict the actuators'
# torques, `train ndm --effort`, and the residuals weigh their error by W,
# `--effort-weight W`; the rollouts and the chaos box carry the torques either way).
set -u
cd "$(dirname "$0")/.."
export MENAGERIE_ROOT=${MENAGERIE_ROOT:-$PWD/../shared/menagerie}
G=$1; D=$2; TR=${3:-160000}
ROBOT=${ROBOT:-sim:dynamics=reality,chaos_box=20}
T=${THREADS:-2}; LS=${LS:-0.001 0.03 0.3}; CHAOS=${CHAOS:-300}; H=${HORIZON:-1}
EFFORT=${EFFORT:-0}; NDM_EFFORT=(); RES_EFFORT=()
if [ "$EFFORT" != 0 ]; then NDM_EFFORT=(--effort); RES_EFFORT=(--effort-weight "$EFFORT"); fi
export OMP_NUM_THREADS=$T MKL_NUM_THREADS=$T
mkdir -p "$D"
[ -f "$D/sim_rollouts_leap/manifest.json" ] || .venv/bin/dexteleop data generate --task rotate --hand leap \
  --policy "$G" --transitions "$TR" --threads $T --out "$D/sim_rollouts_leap" > "$D/gen.log" 2>&1
[ -f "$D/chaos_leap_palm_up/manifest.json" ] || .venv/bin/dexteleop data chaos-box --robot "$ROBOT" \
  --trajectories "$CHAOS" --source "$D/sim_rollouts_leap" --out "$D/chaos_leap_palm_up" --no-progress > "$D/chaos.log" 2>&1
for K in joint_wise whole_hand; do
  [ -f "$D/ndm_${K}_sim.pt" ] || .venv/bin/dexteleop train ndm --kind $K "${NDM_EFFORT[@]}" --data "$D/sim_rollouts_leap" \
    --epochs 15 --threads $T --out "$D/ndm_${K}_sim.pt" --no-progress > "$D/ndm_${K}_sim.log" 2>&1
  [ -f "$D/ndm_${K}.pt" ] || .venv/bin/dexteleop train ndm --kind $K --data "$D/chaos_leap_palm_up" \
    --init "$D/ndm_${K}_sim.pt" --epochs 15 --lr 5e-4 --threads $T --out "$D/ndm_${K}.pt" --no-progress > "$D/ndm_${K}.log" 2>&1
  for L in $LS; do
    [ -f "$D/residual_${K}_l$L.pt" ] || .venv/bin/dexteleop train dexndm-residual --data "$D/sim_rollouts_leap" \
      --ndm "$D/ndm_${K}.pt" --epochs 8 --max-rad 0.15 --l2 $L --horizon $H "${RES_EFFORT[@]}" --threads $T --out "$D/residual_${K}_l$L.pt" \
      --no-progress > "$D/res_${K}_l$L.log" 2>&1
  done
done
# NDM errors on a held-out wrist when its chaos-box data exists (`data chaos-box --wrist palm_down`)
OOD=(); [ -f out/dexndm/chaos_leap_palm_down/manifest.json ] && OOD=(--ood-data out/dexndm/chaos_leap_palm_down)
FIRST=${LS%% *}
for L in $LS; do
  M="joint_wise whole_hand"; [ $L = $FIRST ] && M="direct joint_wise whole_hand"
  [ -f "$D/eval_l$L.json" ] || .venv/bin/python bench/dexndm_eval.py --hand leap --episodes 20 --seed 0 \
    --generalist "$G" --methods $M --residual-joint-wise "$D/residual_joint_wise_l$L.pt" \
    --residual-whole-hand "$D/residual_whole_hand_l$L.pt" --chaos-data "$D/chaos_leap_palm_up" \
    "${OOD[@]}" --no-throughput --json "$D/eval_l$L.json" > "$D/eval_l$L.log" 2>&1
done
