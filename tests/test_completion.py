"""§22 shell completions: each generated script is loaded into the real shell and asked.

bash: COMP_WORDS/COMP_CWORD are set and the completion function is called, COMPREPLY printed.
zsh: an interactive `zsh -f` on a pty (pexpect) with compinit; TAB is bound to a widget that
runs complete-word while `compadd` is wrapped to print every match it really adds.
fish: `complete -C LINE`.
A missing shell skips with a reason, except under CI=true where it fails.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

import codex

SHELLS = ("bash", "zsh", "fish")


def need(shell):
    """The path of `shell`; fail under CI, skip elsewhere, when it is not installed."""
    path = shutil.which(shell)
    if path is None:
        msg = "%s is not installed (apt-get install %s; .ci/apt-foundation.txt lists it)" % (shell, shell)
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    """shell -> path of the script printed by a real `python codex.py completion SHELL`."""
    d = tmp_path_factory.mktemp("completion")
    out = {}
    for shell in SHELLS:
        proc = subprocess.run([sys.executable, str(REPO / "codex.py"), "completion", shell],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        out[shell] = d / ("codex." + shell)
        out[shell].write_text(proc.stdout)
    return out


@pytest.fixture(scope="module")
def play(tmp_path_factory):
    """A working directory with two directories and two files to complete."""
    d = tmp_path_factory.mktemp("play")
    (d / "subdir1").mkdir()
    (d / "subdir2").mkdir()
    (d / "file1.txt").write_text("x")
    (d / "file2.png").write_text("x")
    return d


def bash_complete(script, line, cwd):
    """Candidates bash's completion function offers for `line` (the cursor at its end)."""
    words = line.split(" ")
    prog = 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _codex; printf "%s\\n" "${COMPREPLY[@]}"'
    proc = subprocess.run([need("bash"), "--norc", "--noprofile", "-c", prog, "_", str(script)] + words,
                          capture_output=True, text=True, timeout=30, cwd=str(cwd))
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


ZSH_SETUP = r"""
autoload -Uz compinit && compinit -u -D
source %s
compadd() {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  local -a __hits; builtin compadd -A __hits "$@"
  local h; for h in $__hits; do print -r -- "<<C:$h>>"; done
  builtin compadd "$@"
}
_codex_capture() { print -r -- "<<BEGIN>>"; zle complete-word; print -r -- "<<END>>"; }
zle -N _codex_capture; bindkey '^I' _codex_capture
PS1='%%%% '
print -r -- '<<'READY'>>'
"""


def zsh_complete(script, line, cwd):
    """Candidates zsh's completion system adds for `line`, captured on a real pty."""
    import pexpect

    env = dict(os.environ, HOME=str(cwd), TERM="dumb")
    z = pexpect.spawn(need("zsh"), ["-f", "-i"], cwd=str(cwd), env=env, encoding="utf-8",
                      timeout=20, dimensions=(50, 400))
    try:
        for setup_line in (ZSH_SETUP % script).strip().splitlines():
            z.sendline(setup_line)
        z.expect("<<READY>>")
        z.send(line + "\t")
        z.expect("<<END>>")
        out = z.before.split("<<BEGIN>>")[-1]
    finally:
        z.close(force=True)
    return sorted(set(re.findall(r"<<C:(.*?)>>", out)))


def fish_complete(script, line, cwd):
    """Candidates `complete -C` gives in fish for `line`."""
    proc = subprocess.run([need("fish"), "--no-config", "-c", "source $argv[1]; complete -C $argv[2]",
                           str(script), line], capture_output=True, text=True, timeout=30, cwd=str(cwd))
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    return [w.split("\t")[0] for w in proc.stdout.splitlines() if w]


COMPLETERS = {"bash": bash_complete, "zsh": zsh_complete, "fish": fish_complete}


@pytest.fixture(params=SHELLS)
def complete(request, scripts, play):
    """complete(line) -> set of candidates in the parametrized shell (dirs without '/')."""
    shell = request.param
    need(shell)
    return lambda line: {w.rstrip("/") for w in COMPLETERS[shell](scripts[shell], line, play)}


# -- what the user types ---------------------------------------------------------------------


def test_subcommand_prefix(complete):
    assert complete("codex ex") == {"exec"}


def test_subcommand_option_prefix(complete):
    assert complete("codex exec --js") == {"--json"}


def test_exec_does_not_offer_resume_only_flags(complete):
    # --last/--all only apply to `exec resume`; `codex resume` has them as its own options
    assert not {"--last", "--all"} & complete("codex exec --")
    assert {"--last", "--all"} <= complete("codex resume --")


def test_sandbox_choices(complete):
    assert complete("codex -s ") == set(codex.SANDBOX_MODES)
    assert complete("codex exec --sandbox ") == set(codex.SANDBOX_MODES)


def test_completion_shells(complete):
    assert complete("codex completion ") == {"bash", "zsh", "fish"}


def test_cd_completes_directories(complete):
    assert complete("codex -C ") == {"subdir1", "subdir2"}
    assert complete("codex exec --cd sub") == {"subdir1", "subdir2"}


def test_path_flags_complete_files(complete):
    assert complete("codex exec --output-last-message fil") == {"file1.txt", "file2.png"}
    assert "file2.png" in complete("codex -i file2")


def test_enum_choices_after_alias(complete):
    assert complete("codex e --color ") == {"always", "never", "auto"}
    assert complete("codex -a ") == set(codex.APPROVAL_POLICIES) | set(codex.APPROVAL_ALIASES)


def test_option_equals_value(scripts, play):
    # bash splits `--color=a` at '=' (COMP_WORDBREAKS): the words reach the function like this
    need("bash")
    assert set(bash_complete(scripts["bash"], "codex exec --color = a", play)) == {"always", "auto"}
    assert set(bash_complete(scripts["bash"], "codex --cd = ", play)) == {"subdir1", "subdir2"}
    if shutil.which("fish"):
        assert set(fish_complete(scripts["fish"], "codex exec --color=a", play)) == {"--color=always", "--color=auto"}
    if shutil.which("zsh"):
        assert set(zsh_complete(scripts["zsh"], "codex exec --color=a", play)) == {"always", "auto"}


def test_nested_subcommands(complete):
    assert complete("codex mcp ") == {"serve", "list", "call", "add", "get", "remove"}
    assert complete("codex mcp add --b") == {"--bearer-token-env-var"}
    assert complete("codex mcp add NAME --b") == {"--bearer-token-env-var"}
    assert complete("codex mcp list --j") == {"--json"}
    assert complete("codex debug ") == {"landlock", "seatbelt"}
    assert "--full-auto" in complete("codex debug landlock --f")


def test_option_values_are_not_subcommands(complete):
    # `exec` here is the model's name: still at the top level, where there is no --json
    assert complete("codex -m exec --js") == set()
    assert complete("codex exec -m exec --js") == {"--json"}
    assert "exec" in complete("codex -p mcp ")


def test_top_level_offers_every_subcommand(complete):
    got = complete("codex ")
    for name, aliases in [("exec", ["e"]), ("proto", ["p"])] + [(n, []) for n in codex.SUBCOMMANDS]:
        assert name in got and set(aliases) <= got


# -- generated from the parser: every node, every flag ---------------------------------------


def parser_nodes():
    """(path, option strings, subcommand names incl. aliases) for every parser in the tree."""
    out = []

    def walk(p, path):
        opts, subs = set(), set()
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                subs |= set(a.choices)
                seen = set()
                for name, sp in a.choices.items():
                    if id(sp) not in seen:
                        seen.add(id(sp))
                        walk(sp, path + [name])
            elif a.option_strings and a.help != argparse.SUPPRESS:
                opts |= set(a.option_strings)
        out.append((path, opts, subs))

    walk(codex.build_parser(), [])
    return out


@pytest.mark.parametrize("shell", ["bash", "fish"])
def test_every_flag_and_subcommand_of_every_node(shell, scripts, play):
    need(shell)
    nodes = parser_nodes()
    assert len(nodes) >= 15
    for path, opts, subs in nodes:
        line = " ".join(["codex"] + path)
        got = set(COMPLETERS[shell](scripts[shell], line + " -", play))
        assert got == opts, line
        if subs:
            assert subs <= set(COMPLETERS[shell](scripts[shell], line + " ", play)), line


def test_zsh_script_is_native_and_covers_the_tree(scripts):
    text = scripts["zsh"].read_text()
    assert text.startswith("#compdef codex\n") and "_arguments" in text and "compdef _codex codex" in text
    for path, opts, subs in parser_nodes():
        for opt in opts:
            assert re.search(r"[)'*]%s[=+\[]" % re.escape(opt), text), (path, opt)
    need("zsh")
    proc = subprocess.run([shutil.which("zsh"), "-n", str(scripts["zsh"])], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


# -- the command itself ----------------------------------------------------------------------


def test_completion_command_defaults_to_bash(run_codex):
    proc = run_codex("completion")
    assert proc.returncode == 0
    assert "complete -o bashdefault -o default -F _codex codex" in proc.stdout


def test_completion_rejects_unknown_shell(run_codex):
    proc = run_codex("completion", "tcsh")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr and "Traceback" not in proc.stderr


def test_completion_script_rejects_unknown_shell():
    with pytest.raises(codex.UsageError, match="powershell"):
        codex.completion_script("powershell", codex.build_parser())


def test_zipapp_prints_the_same_scripts(dist_codex, scripts):
    for shell in SHELLS:
        proc = subprocess.run([str(dist_codex), "completion", shell], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == scripts[shell].read_text()
