#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Turn cellprov's markdown man pages (docs/man/*.N.md) into roff.

The pages use a small subset of markdown: a title line ("# name(N)" or
pandoc's "% NAME(N) ..."), "#"/"##" section headings, "###" subsections,
paragraphs, "- " lists, fenced code, pandoc definition lists (a term line,
then lines starting with ":   "), pipe tables, and inline `code`, *italic*
and **bold**. Anything else is passed through as text.

Usage: md2man.py INPUT.md OUTPUT
"""

import datetime
import os
import re
import sys


def esc(text):
    text = text.replace("\\", "\\e")
    text = re.sub(r"^([.'])", r"\\&\1", text)
    return text.replace("-", "\\-")


def inline(text):
    out = []
    pos = 0
    for m in re.finditer(r"`([^`]*)`|\*\*([^*]+)\*\*|\*([^*]+)\*", text):
        out.append(esc(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append("\\fB" + esc(m.group(1)) + "\\fR")
        elif m.group(2) is not None:
            out.append("\\fB" + esc(m.group(2)) + "\\fR")
        else:
            out.append("\\fI" + esc(m.group(3)) + "\\fR")
        pos = m.end()
    out.append(esc(text[pos:]))
    line = "".join(out)
    return "\\&" + line if line.startswith((".", "'")) else line


def convert(src, name_hint):
    lines = src.splitlines()
    out = []
    title, section = name_hint, "1"
    i = 0

    # Title: "% NAME(N) ..." or "# name(N)" or "# name(N) -- summary".
    while i < len(lines) and not lines[i].strip():
        i += 1
    m = re.match(r"^(?:%|#)\s*([\w.-]+)\((\d)\)\s*(?:--\s*(.*))?", lines[i]) if i < len(lines) else None
    summary = None
    if m:
        title, section, summary = m.group(1), m.group(2), m.group(3)
        i += 1
    date = datetime.date.fromtimestamp(int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or
                                       datetime.datetime.now().timestamp())
    out.append('.TH "%s" "%s" "%s" "cellprov" "cellprov"' % (title.upper(), section, date.isoformat()))
    if summary:
        out += [".SH NAME", esc("%s \\- %s" % (title, summary)).replace("\\e\\-", "\\-")]

    para = []

    def flush():
        if para:
            out.append(".PP")
            out.append(inline(" ".join(s.strip() for s in para)))
            para.clear()

    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if s.startswith("```"):
            flush()
            out += [".PP", ".RS 4", ".nf"]
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                out.append(esc(lines[i]) if lines[i] else "")
                i += 1
            out += [".fi", ".RE"]
            i += 1
            continue
        h = re.match(r"^(#{1,3})\s+(.*)", s)
        if h:
            flush()
            level = len(h.group(1))
            text = h.group(2).strip()
            out.append((".SS " if level == 3 else ".SH ") + inline(text.upper() if level < 3 else text))
            i += 1
            continue
        if s.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.match(r"^:?-+:?$", c) for c in cells):
                    rows.append(cells)
                i += 1
            out += [".PP", ".TS", "tab(\t);", " ".join(["l"] * (len(rows[0]) - 1) + ["lx"]) + "."]
            for n, r in enumerate(rows):
                out.append("\t".join(("\\fB%s\\fR" if n == 0 else "%s") % inline(c) for c in r))
            out.append(".TE")
            continue
        if s.startswith(("- ", "* ")):
            flush()
            item = [s[2:]]
            i += 1
            while i < len(lines) and lines[i].startswith("  ") and lines[i].strip() and \
                    not lines[i].strip().startswith(("- ", "* ")):
                item.append(lines[i].strip())
                i += 1
            out += [".IP \\(bu 2", inline(" ".join(item))]
            continue
        if i + 1 < len(lines) and lines[i + 1].startswith(":") and s:
            flush()
            out += [".TP", inline(s)]
            i += 1
            body = []
            while i < len(lines) and (lines[i].startswith(":") or lines[i].startswith("    ")):
                body.append(re.sub(r"^:?\s+", "", lines[i]))
                i += 1
            out.append(inline(" ".join(body)))
            continue
        if not s:
            flush()
            i += 1
            continue
        para.append(line)
        i += 1
    flush()
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    src = open(sys.argv[1], encoding="utf-8").read()
    hint = os.path.basename(sys.argv[1]).split(".")[0]
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(convert(src, hint))


if __name__ == "__main__":
    main()
