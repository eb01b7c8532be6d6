#!/usr/bin/env bash
# The prepared GPU check (issue #8 and the CUDA paths), one command on the device machine:
#   bash scripts/gpu/check.sh                  # after scripts/gpu/fetch_wheels.sh, carrying .whl
# Stages (GPU_CHECK_STAGES, default "tests proposals pipeline"; "compile" is optional):
#   tests      tests/test_devices.py and the other CUDA tests (bf16/fp16, checkpointing)
#   proposals  rs-seg bench: reference vs fast vs floor, vit_l, 1024 x 1024, 29 x 29 grid
#   pipeline   rs-seg bench --pipeline: + ViT-B-16 CLIP and selection
#   compile    rs-seg bench --compile (torch.compile on the decoder)
#   sam3       rs-seg bench --method sam3: SAM 3 (full architecture, random weights), 16 classes, ours
#              (8 prompts a grounding pass on a GPU) vs SegEarth-OV3's loop vs a whole forward per prompt
#   notebooks  scripts/time_notebooks.py --profile full: each notebook's compute time (random weights)
#              into $OUT/timings.json; here: python scripts/time_notebooks.py --merge FILE (needs the
#              notebook wheels: GPU_WHEELS=notebooks scripts/gpu/fetch_wheels.sh)
# Each stage has its own time limit, so one slow stage cannot eat the others. Everything goes
# to $OUT (default ./gpu_out), in at most 6 files (the device tool returns 8): summary.txt with
# the figures for the README, logs.txt with every stage's whole output, and one JSON per bench.
# GPU_CHECK_DEVICE=cpu GPU_CHECK_QUICK=1 tries the script here with the tiny profile.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
STAGES=${GPU_CHECK_STAGES:-tests proposals pipeline}
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
WHEELS=${WHEELS:-.whl}
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/rs_site "$WHEELS"/*.whl \
    || { echo "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/rs_site:$PWD${PYTHONPATH:+:$PYTHONPATH}
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
if [ "${GPU_CHECK_QUICK:-0}" = 1 ]; then
  SIZE=(--profile tiny)
  SAM3=(--profile tiny)
  NOTEBOOKS=(--profile classroom 00_setup_and_data)
else
  NOTEBOOKS=(--profile full)
  SAM3=(--random-weights --profile full --size 1008)
  SIZE=(--sam vit_l --points-per-side 29 --size 1024 --random-weights)
fi
# seconds per stage: the default stages end within 510 s, inside one 600 s device call
declare -A LIMIT=([tests]=100 [proposals]=230 [pipeline]=180 [compile]=150 [sam3]=200 [notebooks]=560)
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }

note "== $(date -u +%FT%TZ) device=$DEVICE stages: $STAGES"
command -v nvidia-smi >/dev/null && note "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
"$PY" -c "import segment_anything, open_clip, rasterio, shapely, peft, rs_helpers.bench.pipeline" \
  || { note "a package is missing: run scripts/gpu/fetch_wheels.sh here and carry .whl"; exit 1; }
LOGS=$OUT/logs.txt
echo "== doctor (openai and jupyter are not needed here)" >"$LOGS"
RS_HELPERS_DEVICE=$DEVICE "$PY" -m rs_helpers doctor >>"$LOGS" 2>&1
grep -E "^ +(python|torch|transformers|peft|device|dtype|gpu) " "$LOGS" | tee -a "$SUMMARY"

run_stage() {  # name, seconds, command...
  local name=$1 limit=$2; shift 2
  local start=$SECONDS log
  log=$(mktemp)
  timeout "$limit" "$@" >"$log" 2>&1
  local rc=$?
  { echo "== $name: $*"; cat "$log"; } >>"$LOGS"
  note "-- $name: exit $rc in $((SECONDS - start)) s$([ $rc = 124 ] && echo " (stopped at its ${limit} s limit)")"
  grep -E "^(stage|sam |post|clip|select|total|peak|proposals:|pipeline:|model run|realistic|path|per-prompt|SegEarth-OV3 loop|ours|bound|checks|sam3|timing|  [0-9][0-9]_)|passed|failed|skipped" \
    "$log" | tail -n 25 | tee -a "$SUMMARY"
  rm -f "$log"
}

for stage in $STAGES; do
  case $stage in
    tests) run_stage tests "${LIMIT[tests]}" "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_devices.py \
             tests/bench/test_bench.py tests/models/test_models.py tests/sam/test_fast_proposals.py ;;
    proposals) run_stage proposals "${LIMIT[proposals]}" "$PY" -m rs_helpers bench --device "$DEVICE" "${SIZE[@]}" \
                 --out "$OUT/bench_proposals.json" ;;
    pipeline) run_stage pipeline "${LIMIT[pipeline]}" "$PY" -m rs_helpers bench --pipeline --device "$DEVICE" "${SIZE[@]}" \
                --clip ViT-B-16 --out "$OUT/bench_pipeline.json" ;;
    compile) run_stage compile "${LIMIT[compile]}" "$PY" -m rs_helpers bench --compile --no-realistic --device "$DEVICE" \
               "${SIZE[@]}" --out "$OUT/bench_compile.json" ;;
    sam3) run_stage sam3 "${LIMIT[sam3]}" "$PY" -m rs_helpers bench --method sam3 --device "$DEVICE" "${SAM3[@]}" \
            --classes 16 --repeat 2 --out "$OUT/bench_sam3.json" ;;
    notebooks) run_stage notebooks "${LIMIT[notebooks]}" "$PY" scripts/time_notebooks.py "${NOTEBOOKS[@]}" \
                 --out "$OUT/timings.json" --overwrite ;;
    *) note "unknown stage: $stage"; exit 2 ;;
  esac
done
note "== done in $SECONDS s"
