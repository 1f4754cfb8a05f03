#!/usr/bin/env bash
# Runs every check of ARCHITECTURE.md's "Dependency rules" table: each must print nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=0
checked=0
while IFS= read -r line; do
  case "$line" in
    '| rule'*|'|---'*) continue ;;
    '| '*'| `'*'` |') ;;
    *) continue ;;
  esac
  cmd="${line##*| \`}"
  cmd="${cmd%\` |}"
  cmd="${cmd//\\|/|}"
  checked=$((checked + 1))
  out="$(bash -c "$cmd" 2>&1)"
  if [ -n "$out" ]; then
    echo "architecture rule broken: $cmd"
    echo "$out" | sed 's/^/    /'
    failed=$((failed + 1))
  fi
done < <(sed -n '/^## Dependency rules/,/^## Invariants/p' ARCHITECTURE.md)
[ "$checked" -gt 0 ] || { echo "no dependency rules found in ARCHITECTURE.md"; exit 1; }
if [ "$failed" -eq 0 ]; then echo "architecture: all $checked dependency rules hold"; else echo "architecture: $failed of $checked dependency rules broken"; fi
[ "$failed" -eq 0 ]
