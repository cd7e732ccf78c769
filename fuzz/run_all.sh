#!/usr/bin/env bash
# Run every fuzzer for SECONDS (default 600), JOBS at a time (default 2), at the lowest priority.
# Usage: bash fuzz/run_all.sh [SECONDS] [JOBS] [format ...]; logs in fuzz/logs/, crashes in fuzz/findings/.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# Fork mode (below) re-runs each script through its "#!/usr/bin/env python3" line: that python must be $PY.
export PATH="$(dirname "$(command -v "$PY")"):$PATH"
SECONDS_EACH=${1:-600}
JOBS=${2:-2}
shift 2 2>/dev/null || shift $#
FORMATS=("$@")
if [ ${#FORMATS[@]} -eq 0 ]; then
  FORMATS=(tiff png npy lineage-json spots-csv ome-companion npz trk trks label-zip dcl-edit-zip dcl-export-zip dcl-project-zip)
fi
mkdir -p fuzz/logs
run_one() {
  fmt=$1
  script=fuzz/fuzz_$(echo "$fmt" | sed 's/^dcl-//; s/-/_/g').py
  "$PY" fuzz/make_corpus.py "$fmt" >/dev/null
  mkdir -p "fuzz/work/$fmt" "fuzz/findings/$fmt"
  # -fork=1 -ignore_*: a finding is saved and fuzzing goes on instead of stopping at the first one.
  nice -n 19 "$PY" "$script" "fuzz/work/$fmt" "fuzz/corpus/$fmt" \
    -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2048 -max_len=1048576 \
    -artifact_prefix="fuzz/findings/$fmt/" -print_final_stats=1 >"fuzz/logs/$fmt.log" 2>&1
  echo "$fmt exit $?" >>fuzz/logs/summary.txt
}
for fmt in "${FORMATS[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 2; done
  run_one "$fmt" &
done
wait
