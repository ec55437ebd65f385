#!/usr/bin/env bash
# Chaos-box data size ablation (issue 21): NDM fine-tuned on the first N trajectories.
set -u
cd /work/main
export MENAGERIE_ROOT=/work/shared/menagerie
for N in 30 100; do
  .venv/bin/dexteleop train ndm --kind joint_wise --data out/dexndm/chaos_leap_palm_up \
    --init out/dexndm/ndm_joint_wise_sim.pt --epochs 15 --lr 5e-4 --max-trajectories $N \
    --out out/dexndm/abl/ndm_jw_$N.pt --no-resume --no-progress > out/dexndm/abl/ndm_$N.log 2>&1
  .venv/bin/dexteleop train dexndm-residual --data out/dexndm/sim_rollouts_leap \
    --ndm out/dexndm/abl/ndm_jw_$N.pt --epochs 8 --max-rad 0.1 \
    --out out/dexndm/abl/res_jw_$N.pt --no-progress > out/dexndm/abl/res_$N.log 2>&1
  .venv/bin/python bench/dexndm_eval.py --hand leap --episodes 10 --seed 0 --methods joint_wise \
    --residual-joint-wise out/dexndm/abl/res_jw_$N.pt --no-throughput \
    --json bench/results/dexndm_ablation_$N.json > out/dexndm/abl/eval_$N.log 2>&1
done
