#!/usr/bin/env bash
# Submit a sweep to SLURM: one array task per sweep entry (each an MPI job),
# then one aggregation job that waits for every array (afterany). Entries with
# `target-risk = match` are arrays that wait for their baselines' tasks
# (afterok; cancelled if a baseline fails: --kill-on-invalid-dep=yes).
#
#   jobs/submit_sweep.sh SWEEP.ini [--out DIR] [--ranks N] [--cpus-per-task C] [--time T]
#                        [--partition P] [--signal-seconds S] [--dry-run] [-- sbatch options]
#
#   --out DIR            base directory of the run directories (default: [sweep] out)
#   --ranks N            MPI ranks per entry (sbatch --ntasks; default 2)
#   --cpus-per-task C    threads per rank (default 1)
#   --time T             time limit per array task and of the aggregation (default 04:00:00)
#   --partition P        partition (default: the cluster's default)
#   --signal-seconds S   SIGUSR1 lead time before the limit (--signal=B:USR1@S; default 300)
#   --dry-run            print the sbatch commands, submit nothing
#   -- ...               further options for both sbatch calls (e.g. --account, --qos)
#
# Environment:
#   EDI_ANON  edi-anon binary; default: edi-anon on PATH, else build/edi-anon next
#             to this script's repository. Exported to the jobs as an absolute path.
#
# Slurm output goes to DIR/slurm/ (appended to when a task is requeued). Relative
# paths in the sweep file (data, model) are resolved against the directory this
# script is called from, which is also the jobs' working directory. Prints both
# job ids and the commands to watch, resume and cancel.
set -euo pipefail

JOBS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() { sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

sweep='' out='' ranks=2 cpus=1 time_limit=04:00:00 partition='' signal_s=300 dry=0 extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    --ranks) ranks=$2; shift 2 ;;
    --ranks=*) ranks=${1#*=}; shift ;;
    --cpus-per-task) cpus=$2; shift 2 ;;
    --cpus-per-task=*) cpus=${1#*=}; shift ;;
    --time) time_limit=$2; shift 2 ;;
    --time=*) time_limit=${1#*=}; shift ;;
    --partition) partition=$2; shift 2 ;;
    --partition=*) partition=${1#*=}; shift ;;
    --signal-seconds) signal_s=$2; shift 2 ;;
    --signal-seconds=*) signal_s=${1#*=}; shift ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) echo "submit_sweep.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$sweep" ] || { echo "submit_sweep.sh: one sweep file only" >&2; exit 2; }; sweep=$1; shift ;;
  esac
done
[ -n "$sweep" ] || { usage >&2; exit 2; }
[ -f "$sweep" ] || { echo "submit_sweep.sh: $sweep: no such file" >&2; exit 2; }
for v in "$ranks" "$cpus" "$signal_s"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "submit_sweep.sh: expected a positive integer, got '$v'" >&2; exit 2; }
done

if [ -z "${EDI_ANON:-}" ]; then
  if command -v edi-anon >/dev/null; then EDI_ANON=$(command -v edi-anon)
  elif [ -x "$JOBS_DIR/../build/edi-anon" ]; then EDI_ANON=$JOBS_DIR/../build/edi-anon
  else echo "submit_sweep.sh: edi-anon not found (set EDI_ANON)" >&2; exit 2; fi
fi
EDI_ANON=$(cd "$(dirname "$EDI_ANON")" && pwd)/$(basename "$EDI_ANON")
sweep=$(cd "$(dirname "$sweep")" && pwd)/$(basename "$sweep")

# The plan: `--list` validates every entry and prints "out: DIR" (the value
# edi-anon uses: --out, else [sweep] out, unquoted), "aggregate: true|false",
# then "  I  NAME" per entry, its options, and "     after: J,K (...)" for an
# entry that waits for baselines (target-risk = match).
out_args=()
[ -z "$out" ] || out_args=(--out "$out")
listing=$("$EDI_ANON" sweep --config "$sweep" "${out_args[@]}" --list) || {
  echo "submit_sweep.sh: edi-anon sweep --list refused $sweep (see above)" >&2
  exit 2
}
n=$(awk '/^ *[0-9]+  [^ ]+$/' <<<"$listing" | wc -l)
[ "$n" -gt 0 ] || { echo "submit_sweep.sh: $sweep has no entries" >&2; exit 2; }
out=$(sed -n 's/^out: //p' <<<"$listing" | head -1)
aggregate=$(sed -n 's/^aggregate: //p' <<<"$listing" | head -1)
[ -n "$out" ] && [ -n "$aggregate" ] || { echo "submit_sweep.sh: edi-anon sweep --list printed no 'out:'/'aggregate:' line" >&2; exit 2; }
# The first array: every entry without 'after:'. Then one array per distinct
# baseline list, waiting for exactly those tasks (afterok).
declare -A waits=()  # baseline list "J,K" -> its entries "I,L"
first=()
while read -r idx after; do
  if [ -z "$after" ]; then first+=("$idx"); else waits[$after]+="${waits[$after]:+,}$idx"; fi
done < <(awk '/^ *[0-9]+  [^ ]+$/ { if (i != "") print i, a; i = $1; a = "" }
              /^     after: / { a = $2 }
              END { if (i != "") print i, a }' <<<"$listing")
first_list=$(IFS=,; echo "${first[*]}")
[ -n "$first_list" ] || { echo "submit_sweep.sh: every entry waits for another one" >&2; exit 2; }

[ "$dry" = 1 ] || mkdir -p "$out/slurm"
out=$( [ -d "$out" ] && cd "$out" && pwd || echo "$(pwd)/$out")

common=(--time="$time_limit" --export="ALL,EDI_ANON=$EDI_ANON")
[ -z "$partition" ] || common+=(--partition="$partition")
common+=("${extra[@]}")
# array_cmd INDICES [DEPENDENCY]: sets cmd to the sbatch command of one array.
array_cmd() {
  cmd=(sbatch --parsable "${common[@]}" --array="$1" --ntasks="$ranks" --cpus-per-task="$cpus"
       --signal="B:USR1@$signal_s" --requeue --open-mode=append --output="$out/slurm/%x-%A_%a.out")
  [ -z "${2:-}" ] || cmd+=(--dependency="$2" --kill-on-invalid-dep=yes)
  cmd+=("$JOBS_DIR/sweep-array.sbatch" "$sweep" "$out")
}
# task_deps ARRAY "J,K" -> afterok:ARRAY_J:ARRAY_K
task_deps() {
  local d='' i ids
  IFS=, read -ra ids <<<"$2"
  for i in "${ids[@]}"; do d+=":${1}_$i"; done
  echo "afterok$d"
}
agg_cmd=(sbatch --parsable "${common[@]}" --ntasks=1 --cpus-per-task="$cpus" --open-mode=append
         --output="$out/slurm/%x-%j.out" --dependency=afterany:ALL_ARRAYS
         "$JOBS_DIR/aggregate.sbatch" "$sweep" "$out")

echo "sweep $sweep: $n entr$( [ "$n" = 1 ] && echo y || echo ies) -> $out ($ranks rank(s) x $cpus thread(s) each)"
if [ "$dry" = 1 ]; then
  array_cmd "$first_list"
  printf '%q ' "${cmd[@]}"; echo
  for after in "${!waits[@]}"; do
    array_cmd "${waits[$after]}" "$(task_deps FIRST_ARRAY "$after")"
    printf '%q ' "${cmd[@]}"; echo
  done
  [ "$aggregate" = false ] || { printf '%q ' "${agg_cmd[@]}"; echo; }
  exit 0
fi

# submit: run "${cmd[@]}", print the job id.
submit() {
  local id
  id=$("${cmd[@]}") || { echo "submit_sweep.sh: sbatch failed: ${cmd[*]}" >&2; exit 1; }
  echo "${id%%;*}"
}
array_cmd "$first_list"
array_id=$(submit)
all_ids=("$array_id")
echo "array job:       $array_id  (tasks $first_list)"
for after in "${!waits[@]}"; do
  array_cmd "${waits[$after]}" "$(task_deps "$array_id" "$after")"
  id=$(submit)
  all_ids+=("$id")
  echo "matched array:   $id  (tasks ${waits[$after]}; afterok on tasks $after of $array_id)"
done
ids_colon=$(IFS=:; echo "${all_ids[*]}")
ids_comma=$(IFS=,; echo "${all_ids[*]}")
agg_id=''
if [ "$aggregate" = true ]; then
  agg_cmd=("${agg_cmd[@]/ALL_ARRAYS/$ids_colon}")
  cmd=("${agg_cmd[@]}")
  agg_id=$(submit)
  echo "aggregation job: $agg_id  (afterany:$ids_colon) -> $out/aggregate"
else
  echo "aggregation: off ([sweep] aggregate = false)"
fi
cat <<EOF

watch:    $EDI_ANON status $out --config $sweep   (done / failed / running / interrupted / pending, --index left)
          squeue -j $ids_comma${agg_id:+,$agg_id}
          tail -f $out/slurm/*.out
          (a task that stopped with exit 75 is requeued: it shows as PD (BeginTime) for about
           2 minutes, SLURM's requeue delay; 'scontrol update JobId=ID StartTime=now' starts it sooner)
pause one task (checkpoint, requeue):  scancel --batch --signal=USR1 ${array_id}_I
          (scancel may answer 'Job can not be altered now' and retry although the signal arrived: see the task's output)
cancel:   scancel ${all_ids[*]}${agg_id:+ $agg_id}   (ranks commit their shard and exit 75; nothing is requeued)
resume:   $0 $sweep --out $out --ranks $ranks --cpus-per-task $cpus --time $time_limit
          (finished runs (complete.json, same options) are skipped, interrupted ones resumed;
           a single entry: EDI_ANON=$EDI_ANON sbatch --array=I --ntasks=$ranks --cpus-per-task=$cpus --requeue --open-mode=append --output='$out/slurm/%x-%A_%a.out' $JOBS_DIR/sweep-array.sbatch $sweep $out)
EOF
