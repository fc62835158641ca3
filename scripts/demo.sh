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
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/bootstrap.sh
raykit=.venv/bin/raykit
large=${RAYKIT_DEMO_LARGE:-20000}
small=${RAYKIT_DEMO_SMALL:-50000}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
reports="reports/demo-$stamp"
mkdir -p "$reports"

echo "== 1/6 sandbox hosts"
inv=$("$raykit" sandbox up | tail -n 1)
inv1=$("$raykit" sandbox inventory --nodes 1 | tail -n 1)
echo "inventory: $inv (3 nodes), $inv1 (the head alone)"
# A cluster left by an earlier demo runs on all 3 hosts: stop it (nothing is removed) so the
# head can run alone first.
if [ -f "$HOME/.config/raykit/clusters/raykit-sandbox/cluster.json" ]; then
  "$raykit" down -i "$inv"
fi

# The seed's suite: name, then --set arguments.
suite=(
  "simple_tasks"
  "fake_nn --set preset=large --set task_num=$large"
  "fake_nn --set preset=small --set task_num=$small"
  "forward_remote"
  "fake_nn_balanced --set preset=large --set task_num=$large"
)

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

echo "== 2/6 deploy on the head alone (site.yml with a 1-node inventory)"
"$raykit" up -i "$inv1"
echo "== 3/6 the seed's workloads on 1 node"
run_suite "$inv1" 1node
echo "== 4/6 scale out to 3 nodes (the same site.yml, the full inventory)"
"$raykit" up -i "$inv"
"$raykit" smoke -i "$inv"
echo "== 5/6 the seed's workloads on 3 nodes"
run_suite "$inv" 3nodes

echo "== 6/6 1 node vs 3 nodes"
compare_md="$reports/compare-1node-vs-3nodes.md"
: >"$compare_md"
while IFS='|' read -r label key one; do
  [ "$label" = 1node ] || continue
  three=$(awk -F'|' -v k="$key" '$1 == "3nodes" && $2 == k {print $3}' "$reports/index")
  echo "## $key" >>"$compare_md"
  "$raykit" compare "$one" "$three" --markdown "$reports/.part.md"
  cat "$reports/.part.md" >>"$compare_md"
  echo >>"$compare_md"
done <"$reports/index"
rm -f "$reports/.part.md"

echo
echo "Reports (each: report.json, report.md, report.html):"
cut -d'|' -f3 "$reports/index" | sed 's/^/  /'
echo "Comparison: $compare_md"
cat <<EOT

The cluster is up on 3 nodes. Next:
  $raykit bench -i $inv --workload fake_nn --set preset=small   # one more report
  $raykit run -i $inv path/to/your_script.py                    # your own script, measured
  $raykit compare REPORT_DIR REPORT_DIR                        # side by side
  $raykit status -i $inv          # versions, units, alive nodes
  $raykit down -i $inv [--purge]  # stop Ray (and remove everything raykit installed)
  $raykit sandbox down            # remove the sandbox hosts
EOT
