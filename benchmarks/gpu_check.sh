#!/usr/bin/env bash
# Everything GPU-side in one run of at most 8 minutes on one CUDA GPU:
#   1. the test suite with --device cuda                      (at most SUITE_SECONDS, default 150)
#   2. benchmarks/speed.py --device cuda, headline and grid    (at most SPEED_SECONDS, default 150)
#   3. a short CUDA training of each recipe (dev figure, tokens/s), scored on the held-out test
#      split where HELDOUT is given                           (at most RECIPE_SECONDS, default 180)
#
#   benchmarks/gpu_check.sh OUTDIR [DATA]
#
# OUTDIR receives gpu_check.json (the summary), gpu_check.log (everything printed), suite.log,
# speed.json, recipes.json and the run folders. DATA is the data sets' folder (default $DATA, else
# ../shared/data beside the project); HELDOUT=DIR is a folder laid out like it whose data sets hold
# test files (ptb/test.txt, multi30k/test.tok.de, ...). PYTHON (default: python) is the Python with
# rnnkit and a CUDA build of torch installed. RECIPE_MINUTES (0.05) and GPU_RECIPE_MINUTES (0.25)
# are each recipe's budget; the GPU recipes are meant for 5 minutes, so their figures from this
# check are a short run's, not what the recipe reaches (GPU_RECIPE_MINUTES=5 RECIPE_SECONDS=2400
# measures that, in about 35 more minutes). Without a CUDA device it refuses, in one line, before doing anything.
set -uo pipefail

usage="usage: benchmarks/gpu_check.sh OUTDIR [DATA]"
if [ $# -lt 1 ] || [ $# -gt 2 ]; then echo "$usage" >&2; exit 2; fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python}
DATA=${2:-${DATA:-$ROOT/../shared/data}}
HELDOUT=${HELDOUT:-}
SUITE_SECONDS=${SUITE_SECONDS:-150}
SPEED_SECONDS=${SPEED_SECONDS:-150}
RECIPE_SECONDS=${RECIPE_SECONDS:-180}

gpu=$("$PYTHON" -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" 2>/dev/null) || {
  echo "gpu_check: $PYTHON cannot import torch; install rnnkit and a CUDA build of torch, or set PYTHON" >&2; exit 2; }
if [ -z "$gpu" ]; then
  echo "gpu_check: no CUDA device here (torch.cuda.is_available() is False); run it on a machine with a GPU" >&2
  exit 2
fi
if [ -n "$HELDOUT" ] && [ ! -d "$HELDOUT" ]; then echo "gpu_check: HELDOUT=$HELDOUT is not a folder" >&2; exit 2; fi

OUT=$1
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
LOG=$OUT/gpu_check.log
: >"$LOG"
say() { echo "$*" | tee -a "$LOG"; }
started=$(date +%s)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)
say "gpu_check on $gpu, rnnkit at $commit, data $DATA${HELDOUT:+, held-out $HELDOUT}"
cd "$ROOT" || exit 2

# 1. the suite on the GPU, in parallel when pytest-xdist is there
say "== suite: pytest --device cuda"
parallel=()
"$PYTHON" -c "import xdist" 2>/dev/null && parallel=(-n 8)
timeout "$SUITE_SECONDS" "$PYTHON" -m pytest -q -p no:cacheprovider --device cuda ${parallel[@]+"${parallel[@]}"} >"$OUT/suite.log" 2>&1
suite_rc=$?
suite_line=$(grep -E "[0-9]+ (passed|failed|skipped|error)" "$OUT/suite.log" | tail -1 | tr -d '=' | xargs)
[ $suite_rc -eq 124 ] && suite_line="timed out after ${SUITE_SECONDS}s; ${suite_line}"
say "suite: exit $suite_rc: $suite_line"
grep -E "^(FAILED|ERROR) " "$OUT/suite.log" | tee -a "$LOG"

# 2. the recurrent layers' speed on the GPU
say "== speed: benchmarks/speed.py --device cuda --only headline grid"
timeout "$SPEED_SECONDS" "$PYTHON" benchmarks/speed.py --device cuda --data "$DATA" --only headline grid \
  --out "$OUT/speed.json" 2>&1 | tee -a "$LOG"
speed_rc=${PIPESTATUS[0]}
say "speed: exit $speed_rc"

# 3. every recipe, briefly, on the GPU
say "== recipes: benchmarks/gpu_recipes.py --device cuda"
deadline=$(( RECIPE_SECONDS - 30 ))  # no recipe starts in the last 30 seconds
recipe_args=(--out "$OUT" --data "$DATA" --device cuda --deadline "$deadline"
  --minutes "${RECIPE_MINUTES:-0.05}" --gpu-minutes "${GPU_RECIPE_MINUTES:-0.25}")
[ -n "$HELDOUT" ] && recipe_args+=(--heldout "$HELDOUT")
timeout "$RECIPE_SECONDS" "$PYTHON" benchmarks/gpu_recipes.py "${recipe_args[@]}" 2>&1 | tee -a "$LOG"
recipes_rc=${PIPESTATUS[0]}
say "recipes: exit $recipes_rc"

seconds=$(( $(date +%s) - started ))
"$PYTHON" - "$OUT" "$gpu" "$commit" "$suite_rc" "$suite_line" "$speed_rc" "$recipes_rc" "$seconds" <<'EOF'
import json, sys
from pathlib import Path
out, gpu, commit, suite_rc, suite_line, speed_rc, recipes_rc, seconds = sys.argv[1:]
out = Path(out)
read = lambda name: json.loads((out / name).read_text()) if (out / name).is_file() else None  # noqa: E731
summary = {
    "gpu": gpu, "commit": commit, "seconds": int(seconds),
    "suite": {"exit": int(suite_rc), "summary": suite_line},
    "speed": {"exit": int(speed_rc), "results": read("speed.json")},
    "recipes": {"exit": int(recipes_rc), "results": read("recipes.json")},
}
(out / "gpu_check.json").write_text(json.dumps(summary, indent=1) + "\n")
EOF
say "gpu_check: ${seconds}s; suite exit $suite_rc, speed exit $speed_rc, recipes exit $recipes_rc; $OUT/gpu_check.json"
[ $suite_rc -eq 0 ] && [ $speed_rc -eq 0 ] && [ $recipes_rc -eq 0 ]
