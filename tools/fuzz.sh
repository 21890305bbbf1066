#!/usr/bin/env bash
# fuzz.sh [SECONDS]: runs every Fuzz target of weft's own packages for SECONDS each (default 5), one after the
# other (go test fuzzes one target per run). The seed corpora already run in plain `go test`; this adds a short
# search for new inputs, so a decoder of outside input that panics is found in CI. A failing input is written
# under the package's testdata/fuzz/ by go test, to be committed with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
fail=0
while read -r file; do
	pkg=./$(dirname "$file")
	for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
		echo "fuzz: $pkg $name (${secs}s)"
		run() { go test -run '^$' -fuzz "^${name}\$" -fuzztime "${secs}s" "$pkg" >/tmp/weft-fuzz.log 2>&1; }
		# go's fuzzing engine can end a run with a bare "context deadline exceeded" and no failing input when the
		# time runs out during an execution (a harness flake, not a finding): that one case is run once more.
		if run || { grep -q '^    context deadline exceeded$' /tmp/weft-fuzz.log && ! grep -q 'Failing input written' /tmp/weft-fuzz.log &&
			echo "fuzz: $name: the engine's deadline flake, once more" && run; }; then
			tail -1 /tmp/weft-fuzz.log
		else
			cat /tmp/weft-fuzz.log
			fail=1
		fi
	done
done < <(git ls-files '*_test.go' | grep -v '^tools/' | xargs grep -l '^func Fuzz')
exit $fail
