#!/usr/bin/env python3
"""Lists every function in */src/**/*.cpp longer than a limit (default 80 lines).

A function's length runs from the first line of its signature to its closing
brace, both counted. It reads the files as text (comments and string literals
blanked, braces matched), so it needs no build; lambdas count as part of the
function that holds them. Tables (a switch or an array that is one long list)
are listed too: judge those by eye.

Usage: scripts/long_functions.py [--limit N] [ROOT]
"""

import argparse
import pathlib
import re
import sys

CONTAINER = re.compile(r"^(template\s*<.*>\s*)?(namespace|class|struct|union|enum)\b|^extern\s*$", re.S)


def blank_comments_and_strings(text):
    """Comments and literals become spaces, so braces in them do not count."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            open_paren = text.find("(", i)
            delim = text[i + 2:open_paren]
            j = text.find(")" + delim + '"', open_paren)
            j = n if j < 0 else j + len(delim) + 2
            out.append('"' + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + '"')
            i = j
        elif c in "\"'" and not (c == "'" and i > 0 and text[i - 1].isalnum()):  # 1'000 digit separators
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (j - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(text, i):
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(text) - 1


def in_member_init_list(header):
    """`Foo::Foo(int a) : a_{a}`: the brace belongs to an initialiser."""
    close = header.rfind(")")
    if close < 0:
        return False
    tail = header[close + 1:]
    if not re.search(r"(?<!:):(?!:)", tail):
        return False
    return re.search(r"[A-Za-z0-9_>]\s*$", header) is not None and not re.search(
        r"\b(const|noexcept|override|final|mutable)\s*$", header)


def functions(path):
    text = blank_comments_and_strings(path.read_text(errors="replace"))
    # Preprocessor lines (with their continuations) are no code to scan.
    text = re.sub(r"(?m)^[ \t]*#(?:.*\\\n)*.*$", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    line_of = lambda pos: text.count("\n", 0, pos) + 1
    found = []
    header_start = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c in ";}":
            header_start = i + 1
        elif c == "{":
            header = text[header_start:i].strip()
            if CONTAINER.match(header) and "(" not in header.split("{")[0].split("=")[0]:
                header_start = i + 1  # descend: its members are scanned like top-level code
            elif in_member_init_list(header):
                i = matching_brace(text, i)  # keep the header going to the body's brace
            else:
                end = matching_brace(text, i)
                if ")" in header and "=" not in header.split("(")[0]:
                    lead = len(text[header_start:i]) - len(text[header_start:i].lstrip())
                    start_line = line_of(header_start + lead)
                    name = re.sub(r"\s+", " ", header.split("(")[0]).split(" ")[-1]
                    found.append((name, start_line, line_of(end)))
                i = end
                header_start = i + 1
        i += 1
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=80)
    parser.add_argument("root", nargs="?", default=".")
    args = parser.parse_args()
    root = pathlib.Path(args.root)
    rows = []
    for path in sorted(root.glob("*/src/**/*.cpp")):
        for name, start, end in functions(path):
            length = end - start + 1
            if length > args.limit:
                rows.append((length, f"{path.relative_to(root)}:{start}", name))
    for length, where, name in sorted(rows, reverse=True):
        print(f"{length:5d}  {where}  {name}")
    print(f"{len(rows)} function(s) over {args.limit} lines", file=sys.stderr)


if __name__ == "__main__":
    main()
