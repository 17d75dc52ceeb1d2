#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What every installed program shares on its command line: --version
prints one line, "PROGRAM VERSION", and exits 0; its bash completion
(completions/), sourced in bash with bash-completion, offers exactly the
options and commands the program's own --help lists."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

SOURCE = os.environ.get("CP_SOURCE_DIR", "")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=30, **kw)


def check_version(prog, version):
    name = os.path.basename(prog)
    for opt in ("--version", "-V"):
        r = run([prog, opt])
        check(r.returncode == 0, "%s %s: exit %d: %s" % (name, opt, r.returncode, r.stderr))
        check(r.stdout == "%s %s\n" % (name, version),
              "%s %s: want one line '%s %s', got %r" % (name, opt, name, version, r.stdout))
        check(r.stderr == "", "%s %s wrote to stderr: %r" % (name, opt, r.stderr))


def complete(prog, words, cwd=None):
    """What bash completes for the command line words (the last one being
    completed), with the program's completion file sourced."""
    name = os.path.basename(prog)
    script = os.path.join(SOURCE, "completions", name)
    check(os.path.exists(script), "no completion file for " + name)
    line = " ".join([name] + words)
    quoted = " ".join("'%s'" % w for w in [name] + words)
    r = run(["bash", "-c", """
        source %s
        source %s
        func=$(complete -p %s | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')
        [ -n "$func" ] || { echo "no completion function" >&2; exit 3; }
        COMP_WORDS=(%s)
        COMP_CWORD=%d
        COMP_LINE='%s'
        COMP_POINT=${#COMP_LINE}
        $func %s '%s' '%s'
        printf '%%s\\n' "${COMPREPLY[@]}"
        """ % (BASH_COMPLETION, script, name, quoted, len(words), line, name,
               words[-1], words[-2] if len(words) > 1 else name)], cwd=cwd)
    check(r.returncode == 0, "%s: completion failed: %s" % (line, r.stderr))
    return set(w for w in r.stdout.split("\n") if w)


def long_options(text):
    return set(re.findall(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)", text))


def help_text(prog, *args):
    r = run([prog] + list(args) + ["--help"])
    check(r.returncode == 0, "%s --help: exit %d" % (prog, r.returncode))
    return r.stdout


def check_options(prog, before, opts):
    got = complete(prog, before + ["--"])
    check(got == opts, "%s %s --<TAB>: %s; --help lists %s" %
          (os.path.basename(prog), " ".join(before), sorted(got), sorted(opts)))


def check_completion(prog):
    name = os.path.basename(prog)
    if name == "cellprov-tool":
        text = help_text(prog)
        # "  CMD --opt ..." and its indented continuation lines
        cmds = {}
        cmd = None
        for line in text.splitlines():
            m = re.match(r"  ([a-z][a-z-]*)( |$)", line)
            if m:
                cmd = m.group(1)
                cmds.setdefault(cmd, set()).update(long_options(line))
            elif cmd and re.match(r" {9}\[?--", line):
                cmds[cmd].update(long_options(line))
            elif not line.startswith("      "):
                cmd = None
        check(len(cmds) >= 7, "cellprov-tool --help: commands %r" % sorted(cmds))
        top = long_options(text.split("Options:")[1])
        check(complete(prog, [""]) == set(cmds) | top, "cellprov-tool <TAB>: %s" % sorted(complete(prog, [""])))
        for cmd, opts in cmds.items():
            check_options(prog, [cmd], opts | {"--help"})
        # decode completes files, other commands' values nothing
        with tempfile.TemporaryDirectory() as d:
            open(os.path.join(d, "profile.bin"), "w").close()
            check(complete(prog, ["decode", "pro"], cwd=d) == {"profile.bin"}, "decode FILE")
            check(complete(prog, ["milenage", "--k", ""], cwd=d) == set(), "milenage --k HEX")
    elif name == "cellprov-mfg":
        text = help_text(prog)
        cmds = set(re.findall(r"^  ([a-z]+) ", text, re.M))
        check(cmds == {"ca", "device"}, "cellprov-mfg commands %r" % cmds)
        check(complete(prog, [""]) == cmds | long_options(text), "cellprov-mfg <TAB>")
        for cmd in cmds:
            check_options(prog, [cmd], long_options(help_text(prog, cmd)))
    else:
        text = help_text(prog)
        check_options(prog, [], long_options(text))
        check(complete(prog, ["--vers"]) == {"--version"}, name + " --vers<TAB>")
    if name == "cellprovctl":
        text = help_text(prog)
        cmds = set(re.findall(r"^  ([a-z][a-z-]+) ", text.split("Commands:")[1], re.M))
        check(complete(prog, [""]) == cmds, "cellprovctl <TAB>: %s, --help: %s"
              % (sorted(complete(prog, [""])), sorted(cmds)))
        check(complete(prog, ["-J", "re"]) == {"receipt", "re-arm"}, "cellprovctl -J re<TAB>")
        check(complete(prog, ["status", ""]) == set(), "one command only")
        check(complete(prog, ["wait", "pro"]) == {"profile-received", "provisioning", "provisioned"},
              "cellprovctl wait pro<TAB>")
    if name in ("cellprovd", "cellprov-sm", "cellprov-ausf"):
        with tempfile.TemporaryDirectory() as d:
            open(os.path.join(d, "site.conf"), "w").close()
            check(complete(prog, ["--config", "si"], cwd=d) == {"site.conf"}, name + " --config FILE")


def main():
    version, progs = sys.argv[1], sys.argv[2:]
    check(progs, "no program to test")
    for prog in progs:
        check_version(prog, version)
    if not os.path.exists(BASH_COMPLETION) or not shutil.which("bash"):
        print("bash-completion is not installed: completions not checked")
        sys.exit(77)
    for prog in progs:
        check_completion(prog)
    print("ok: %d programs" % len(progs))


if __name__ == "__main__":
    main()
