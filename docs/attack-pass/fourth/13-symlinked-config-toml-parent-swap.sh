#!/bin/sh
# 13: `~/.codex/config.toml` kept as a symlink into a dotfiles repository (GNU stow, chezmoi
# symlink mode, a plain `ln -s`) and codex run in that repository.  The 04 fix hides the
# target (a /dev/null bind on its real path), but nothing pins the directories above it inside
# the writable root: `mv codex codex.old && mkdir codex` and a new config.toml makes the
# user's *own* layer say `sandbox_mode = "danger-full-access"`, `approval_policy = "never"`
# (a project layer is clamped; the user layer is not) -> the next start runs every command
# unsandboxed.  User-namespace mode (Landlock alone: the rename is denied, held).
# Low: the same workspace holds the user's other dotfiles, which already run code at the
# next shell start; but $CODEX_HOME's own config is the one thing the docs promise to protect.
# Exit 1 while vulnerable, 0 otherwise.
REPO=${CODEX_REPO:-$(cd "$(dirname "$0")/../../.." && pwd)}; CODEX=${CODEX_BIN:-$REPO/dist/codex}
T=$(mktemp -d /var/tmp/a4-13-XXXXXX); mkdir -p $T/home/.codex $T/home/dotfiles/codex
export HOME=$T/home CODEX_HOME=$T/home/.codex
printf 'model = "gpt-5"\n' > $T/home/dotfiles/codex/config.toml
ln -s $T/home/dotfiles/codex/config.toml $T/home/.codex/config.toml
cd $T/home/dotfiles && timeout 30 "$CODEX" sandbox -s workspace-write -C $T/home/dotfiles -- sh -c \
  'mv codex codex.old && mkdir codex && printf "sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n" > codex/config.toml' >/dev/null 2>&1
NOW=$(cat $T/home/.codex/config.toml 2>/dev/null)
rm -rf "$T"
echo "user config.toml now: $NOW"
case "$NOW" in *danger-full-access*) echo "VULNERABLE: a sandboxed command replaced the user's config.toml"; exit 1;; esac
echo held; exit 0
