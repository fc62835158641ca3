#!/usr/bin/env bash
# The demo, on a fresh machine too: a 3-host sandbox lab (Debian 12 head + worker, Debian 13
# worker); the cluster deployed on the head alone, the seed's workloads measured there; the
# same cluster scaled out to all 3 hosts, the workloads measured again; a 1-node vs 3-node
# comparison. Every run leaves a report (json, md, html) under reports/.
# The sandbox stays up for you to explore; `.venv/bin/raykit sandbox down` removes it.
#
# Task counts are sized to finish in a few minutes on 2 cores; the seed's own figures are
# 100000 inputs for fake_nn. Override with, e.g.:
#   RAYKIT_DEMO_LARGE=100000 RAYKIT_DEMO_SMALL=100000 make demo
# RAYKIT_DEMO_HOSTS (default 3) sizes the sandbox, RAYKIT_DEMO_SANDBOX names it (default
# raykit-sandbox), RAYKIT_DEMO_REPORTS is where reports go (default reports/);
# RAYKIT_DEMO_SUITE="simple_tasks" (items separated by ';') runs fewer workloads;
# RAYKIT_DEMO_UP_ARGS adds options to each `raykit up` (e.g. "-e ray_node_start_timeout=30"). After each deploy the demo checks that Ray reports
# exactly the inventory's nodes alive and stops, naming what differs, when it does not.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
t_start=$(date +%s%N)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
reports="${RAYKIT_DEMO_REPORTS:-reports}/demo-$stamp"
mkdir -p "$reports"
timings="$reports/timings.tsv"
: >"$timings"
phase_start=$t_start
phase() {  # record the time since the last phase ended under the name $1
  local now ms
  now=$(date +%s%N)
  ms=$(((now - phase_start) / 1000000))
  printf '%s\t%d.%d\n' "$1" $((ms / 1000)) $((ms % 1000 / 100)) >>"$timings"
  phase_start=$now
}
check=(.venv/bin/python scripts/demo_check.py)

echo "== 0/6 the control node's virtualenv (first run: about 1 min)"
scripts/bootstrap.sh
raykit=.venv/bin/raykit
large=${RAYKIT_DEMO_LARGE:-20000}
small=${RAYKIT_DEMO_SMALL:-50000}
hosts=${RAYKIT_DEMO_HOSTS:-3}
name=${RAYKIT_DEMO_SANDBOX:-raykit-sandbox}
phase "control node venv"

echo "== 1/6 $hosts sandbox hosts (first run: podman and two Debian images, about 3 min)"
inv=$("$raykit" sandbox up --name "$name" --hosts "$hosts" | tail -n 1)
inv1=$("$raykit" sandbox inventory --name "$name" --nodes 1 | tail -n 1)
echo "inventory: $inv ($hosts hosts), $inv1 (the head alone)"
# A cluster left by an earlier demo runs on all hosts: stop it (nothing is removed) so the
# head can run alone first.
if [ -f "$HOME/.config/raykit/clusters/$name/cluster.json" ]; then
  "$raykit" down -i "$inv"
fi
phase "sandbox hosts (podman, images, containers)"

# The seed's suite: name, then --set arguments (RAYKIT_DEMO_SUITE=simple_tasks: that alone).
suite=(
  "simple_tasks"
  "fake_nn --set preset=large --set task_num=$large"
  "fake_nn --set preset=small --set task_num=$small"
  "forward_remote"
  "fake_nn_balanced --set preset=large --set task_num=$large"
)
if [ -n "${RAYKIT_DEMO_SUITE:-}" ]; then
  IFS=';' read -r -a suite <<<"$RAYKIT_DEMO_SUITE"
fi

run_suite() {  # $1 inventory, $2 label; appends "label|workload-key|report" to $reports/index
  local item name key out
  for item in "${suite[@]}"; do
    read -r name rest <<<"$item"
    key=$name
    case "$item" in *preset=small*) key="$name-small" ;; *preset=large*) key="$name-large" ;; esac
    # shellcheck disable=SC2086  # $rest holds the --set arguments, split on purpose
    out=$("$raykit" bench -i "$1" --workload "$name" ${rest:-} --reports "$reports" | tail -n 1)
    echo "$2|$key|$out" >>"$reports/index"
  done
}

echo "== 2/6 deploy on the head alone (site.yml with a 1-node inventory; first run: CPython"
echo "       build and wheel download, about 5 min; afterwards cached)"
# shellcheck disable=SC2086  # RAYKIT_DEMO_UP_ARGS: extra `raykit up` options, split on purpose
"$raykit" up -i "$inv1" --timings "$reports/up-1node.json" ${RAYKIT_DEMO_UP_ARGS:-}
"${check[@]}" nodes "$inv1" 1
phase "deploy on 1 node (first: artifacts)"
echo "== 3/6 the seed's workloads on 1 node"
run_suite "$inv1" 1node
phase "workloads on 1 node"
echo "== 4/6 scale out to $hosts nodes (the same site.yml, the full inventory)"
# shellcheck disable=SC2086
"$raykit" up -i "$inv" --timings "$reports/up-${hosts}nodes.json" ${RAYKIT_DEMO_UP_ARGS:-}
nodes_line=$("${check[@]}" nodes "$inv" "$hosts")
echo "$nodes_line"
"$raykit" smoke -i "$inv"
phase "scale out to $hosts nodes"
echo "== 5/6 the seed's workloads on $hosts nodes"
run_suite "$inv" "${hosts}nodes"
phase "workloads on $hosts nodes"

echo "== 6/6 1 node vs $hosts nodes"
compare_md="$reports/compare-1node-vs-${hosts}nodes.md"
: >"$compare_md"
while IFS='|' read -r label key one; do
  [ "$label" = 1node ] || continue
  many=$(awk -F'|' -v k="$key" -v l="${hosts}nodes" '$1 == l && $2 == k {print $3}' "$reports/index")
  echo "## $key" >>"$compare_md"
  "$raykit" compare "$one" "$many" --markdown "$reports/.part.md"
  cat "$reports/.part.md" >>"$compare_md"
  echo >>"$compare_md"
done <"$reports/index"
rm -f "$reports/.part.md"
phase "comparison"

echo
echo "Where the time went (measured in this run; also in $timings):"
"${check[@]}" breakdown "$timings" "$reports/up-1node.json" "$reports/up-${hosts}nodes.json"
echo
echo "Reports written (each: report.json, report.md, report.html), as each report records them:"
reports_ok=0
"${check[@]}" reports "$reports/index" || reports_ok=$?
echo "Comparison: $compare_md"
# Measured at the end, not assumed: which nodes Ray reports alive now.
final=0
now_line=$("${check[@]}" nodes "$inv" "$hosts") || final=$?
cat <<EOT

Now: $now_line
Next:
  $raykit bench -i $inv --workload fake_nn --set preset=small   # one more report
  $raykit run -i $inv path/to/your_script.py                    # your own script, measured
  $raykit compare REPORT_DIR REPORT_DIR                        # side by side
  $raykit status -i $inv          # health in seconds: nodes, load, targets
  $raykit down -i $inv [--purge]  # stop Ray (and remove everything raykit installed)
  $raykit sandbox down --name $name   # remove the sandbox hosts
EOT
if [ "$reports_ok" -ne 0 ] || [ "$final" -ne 0 ]; then
  echo "demo: FAILED: a report above did not succeed, or the cluster is not whole" >&2
  exit 1
fi
