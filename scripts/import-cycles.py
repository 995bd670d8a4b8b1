#!/usr/bin/env python3
"""Reports import circles between sibling modules in the workspace's Rust crates.

For each crate under crates/ and e2e/ (every crate root: src/lib.rs, src/main.rs, src/bin/*.rs,
tests/*.rs, benches/*.rs, examples/*.rs), the module tree is followed from `mod x;` and inline
`mod x { ... }` declarations. Every reference a module makes to another (`use crate::a::b`,
`use super::x`, `use self::x`, and `crate::a::`, `super::x` paths in code) becomes an edge
between the two children of their closest common parent module that hold them: siblings only
(a module using its parent's or its children's items is not an edge). A strongly connected
component of more than one sibling is a circle; each is printed with the edges that make it
(file:line of every reference). Exit status 1 when there is any circle, 0 otherwise.

Test code does not count: `#[cfg(test)]` modules (inline blocks or files) and `#[cfg(test)]`
use statements are skipped. Standard library only.

Usage: scripts/import-cycles.py [REPO_DIR]   (default: the repository holding this script)
"""

import os
import re
import sys
from collections import defaultdict

WORD = r"[A-Za-z_][A-Za-z0-9_]*"


def sanitize(text):
    """Blanks comments, string and char literals (keeping newlines and offsets)."""
    out = list(text)
    i, n = 0, len(text)

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c in "rb" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'(?:br|rb|r)(#*)"', text[i:])
            if m:
                end = text.find('"' + m.group(1), i + m.end())
                end = n if end < 0 else end + 1 + len(m.group(1))
                blank(i, end)
                i = end
            elif text.startswith('b"', i):
                i = skip_string(text, i + 1, blank)
            elif text.startswith("b'", i):
                i = skip_char(text, i + 1, blank)
            else:
                i += 1
        elif c == '"':
            i = skip_string(text, i, blank)
        elif c == "'":
            i = skip_char(text, i, blank)
        else:
            i += 1
    return "".join(out)


def skip_string(text, i, blank):
    j = i + 1
    while j < len(text) and text[j] != '"':
        j += 2 if text[j] == "\\" else 1
    blank(i, j + 1)
    return j + 1


def skip_char(text, i, blank):
    """A char literal ('a', '\\n', '\\u{..}') is blanked; a lifetime is left alone."""
    m = re.match(r"'(?:\\u\{[0-9a-fA-F]+\}|\\.|[^\\'\n])'", text[i:])
    if m:
        blank(i, i + m.end())
        return i + m.end()
    return i + 1


def block_end(clean, open_brace):
    """The offset just past the brace matching the one at `open_brace`."""
    depth = 0
    for k in range(open_brace, len(clean)):
        if clean[k] == "{":
            depth += 1
        elif clean[k] == "}":
            depth -= 1
            if depth == 0:
                return k + 1
    return len(clean)


def expand_use_tree(tree):
    """`a::{b, c::{self, d}}` -> [[a, b], [a, c], [a, c, d]] (renames and globs kept as segments)."""
    tree = re.sub(r"\s+as\s+" + WORD, "", tree)
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, s):
        # split s at top-level commas
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        for p in parts:
            if "{" in p:
                head, rest = p.split("{", 1)
                rest = rest[: rest.rfind("}")]
                segs = [x for x in head.split("::") if x]
                walk(prefix + segs, rest)
            else:
                segs = [x for x in p.split("::") if x]
                if segs == ["self"]:
                    out.append(list(prefix))
                elif segs:
                    out.append(prefix + segs)

    walk([], tree)
    return out


class Crate:
    """One crate root and the modules reachable from it."""

    def __init__(self, name, root):
        self.name = name
        self.root = root
        self.modules = {(): root}  # module path -> file (inline modules map to their file)
        self.refs = []  # (from module, to absolute path, file, line)
        self.scan_file(root, (), is_root=True)

    def child_file(self, file, mpath, name, is_root, path_attr):
        d = os.path.dirname(file)
        if path_attr:
            return os.path.join(d, path_attr)
        stem = os.path.splitext(os.path.basename(file))[0]
        if not (is_root or stem == "mod"):
            d = os.path.join(d, stem)
        for cand in (os.path.join(d, name + ".rs"), os.path.join(d, name, "mod.rs")):
            if os.path.isfile(cand):
                return cand
        return None

    def scan_file(self, file, mpath, is_root=False):
        try:
            with open(file, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            return
        clean = sanitize(text)
        line_of = lambda off: text.count("\n", 0, off) + 1

        # Spans to skip: #[cfg(test)] modules and uses.
        skip = []
        for m in re.finditer(r"#\[cfg\(test\)\]", clean):
            rest = clean[m.end():]
            a = re.match(r"(?:\s*#\[[^\]]*\])*\s*(?:pub(?:\([^)]*\))?\s+)?(mod|use)\b", rest)
            if not a:
                continue
            start = m.end() + a.start(1)
            if a.group(1) == "use":
                end = clean.find(";", start)
                skip.append((m.start(), end + 1 if end >= 0 else len(clean)))
                continue
            b = re.match(r"mod\s+(" + WORD + r")\s*([;{])", clean[start:])
            if not b:
                continue
            if b.group(2) == ";":
                skip.append((m.start(), start + b.end()))
            else:
                skip.append((m.start(), block_end(clean, start + b.end() - 1)))
        skipped = lambda off: any(a <= off < b for a, b in skip)

        # Inline modules: spans giving the module path at each offset.
        inline = []  # (start, end, name)
        for m in re.finditer(r"(?<![\w])mod\s+(" + WORD + r")\s*\{", clean):
            if skipped(m.start()):
                continue
            inline.append((m.end() - 1, block_end(clean, m.end() - 1), m.group(1)))

        def module_at(off):
            path = list(mpath)
            for a, b, name in sorted(inline):
                if a <= off < b:
                    path.append(name)
            return tuple(path)

        for a, b, name in inline:
            self.modules.setdefault(module_at(a) + (name,), file)

        # `mod x;` declarations.
        for m in re.finditer(
            r"((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + WORD + r")\s*;", clean
        ):
            if skipped(m.start()):
                continue
            attrs = text[m.start(): m.start() + len(m.group(1))]
            pa = re.search(r'#\[path\s*=\s*"([^"]+)"\]', attrs)
            here = module_at(m.start())
            child = self.child_file(file, here, m.group(2), is_root and here == mpath, pa and pa.group(1))
            if child and here + (m.group(2),) not in self.modules:
                self.modules[here + (m.group(2),)] = child
                self.scan_file(child, here + (m.group(2),))

        # use statements.
        used_spans = []
        for m in re.finditer(r"(?<![\w])use\s+([^;]*);", clean):
            if skipped(m.start()):
                continue
            used_spans.append((m.start(), m.end()))
            here = module_at(m.start())
            for segs in expand_use_tree(m.group(1)):
                self.add_ref(here, segs, file, line_of(m.start()))

        in_use = lambda off: any(a <= off < b for a, b in used_spans)
        # Paths in code.
        for m in re.finditer(r"(?<![\w$:])((?:crate|self|super)(?:::" + WORD + r")+)", clean):
            if skipped(m.start()) or in_use(m.start()):
                continue
            self.add_ref(module_at(m.start()), m.group(1).split("::"), file, line_of(m.start()))

    def add_ref(self, here, segs, file, line):
        if not segs:
            return
        if segs[0] == "crate":
            target = segs[1:]
        elif segs[0] == "self":
            target = list(here) + segs[1:]
        elif segs[0] == "super":
            base = list(here)
            k = 0
            while k < len(segs) and segs[k] == "super":
                if not base:
                    return
                base.pop()
                k += 1
            target = base + segs[k:]
        else:
            return
        self.refs.append((here, tuple(target), file, line))

    def edges(self):
        """Sibling edges: (parent, from child, to child) -> [(file, line)]."""
        out = defaultdict(list)
        for here, target, file, line in self.refs:
            k = 0
            while k < len(here) and k < len(target) and here[k] == target[k]:
                k += 1
            if k >= len(here) or k >= len(target):
                continue  # a parent's or a child's item
            parent = here[:k]
            to = parent + (target[k],)
            if to not in self.modules:
                continue  # an item of the parent, not a module
            out[(parent, here[k], target[k])].append((file, line))
        return out


def sccs(nodes, adj):
    """Tarjan's strongly connected components."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in adj.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def crate_roots(crate_dir):
    roots = []
    for rel in ("src/lib.rs", "src/main.rs"):
        p = os.path.join(crate_dir, rel)
        if os.path.isfile(p):
            roots.append(p)
    for sub in ("src/bin", "tests", "benches", "examples"):
        d = os.path.join(crate_dir, sub)
        if os.path.isdir(d):
            for f in sorted(os.listdir(d)):
                p = os.path.join(d, f)
                if f.endswith(".rs") and os.path.isfile(p):
                    roots.append(p)
                elif os.path.isfile(os.path.join(p, "main.rs")):
                    roots.append(os.path.join(p, "main.rs"))
    return roots


def main():
    repo = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    crate_dirs = []
    for top in ("crates", "e2e"):
        d = os.path.join(repo, top)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if os.path.isfile(os.path.join(d, name, "Cargo.toml")):
                crate_dirs.append(os.path.join(d, name))
    seen = set()
    circles = 0
    for cdir in crate_dirs:
        for root in crate_roots(cdir):
            crate = Crate(os.path.relpath(root, repo), root)
            edges = crate.edges()
            by_parent = defaultdict(lambda: defaultdict(set))
            for parent, a, b in edges:
                by_parent[parent][a].add(b)
            for parent in sorted(by_parent):
                adj = by_parent[parent]
                nodes = set(adj) | {b for bs in adj.values() for b in bs}
                for comp in sccs(nodes, adj):
                    if len(comp) < 2:
                        continue
                    members = set(comp)
                    lines = []
                    for a in comp:
                        for b in sorted(adj.get(a, ())):
                            if b in members:
                                where = sorted(set(edges[(parent, a, b)]))
                                refs = ", ".join(f"{os.path.relpath(f, repo)}:{l}" for f, l in where)
                                lines.append(f"    {a} -> {b}  ({refs})")
                    key = (os.path.relpath(crate.modules[parent], repo), tuple(comp), tuple(lines))
                    if key in seen:
                        continue
                    seen.add(key)
                    circles += 1
                    where = "::".join(parent) or "crate root"
                    print(f"{os.path.relpath(cdir, repo)} ({os.path.relpath(root, repo)}), in {where}: "
                          f"{' <-> '.join(comp)}")
                    print("\n".join(lines))
    if circles:
        print(f"{circles} import circle(s)")
        return 1
    print("no import circles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
