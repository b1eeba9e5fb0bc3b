#!/usr/bin/env python3
"""The workspace's shape, crate by crate: lines of src/ (production and unit tests apart)
and module cycles (files that import each other, directly or round a loop).

    scripts/structure.py                 # every crate
    scripts/structure.py resilience-core # one crate, with each cycle's imports

A file imports another when it names an item of it (`use crate::a::B`, `super::x`,
`crate::a::b::f(…)`), following `pub use` re-exports to where the item is defined;
`#[cfg(test)]` modules are left out, and a parent declaring its child module is not an
import. Read-only; needs nothing but Python 3.
"""
import os
import re
import sys

CRATES = ["resilience-core", "backend-memory", "backend-redis-rs", "backend-fred",
          "memory-tiers", "resilient-redis", "testkit", "examples"]
TEST_FILES = ("tests.rs", "loom_tests.rs", "test_support.rs")
TEST_MODULE = re.compile(r"\n#\[cfg\(test\)\]\s*\n(#\[[^\n]*\]\s*\n)*(pub(\([^)]*\))?\s+)?mod \w+ \{")


def production(text):
    m = TEST_MODULE.search(text)
    return text[:m.start()] if m else text


def lines(root):
    total = test = 0
    for d, _, fs in os.walk(os.path.join(root, "src")):
        for f in fs:
            if not f.endswith(".rs"):
                continue
            text = open(os.path.join(d, f)).read()
            n = text.count("\n")
            total += n
            test += n if f in TEST_FILES else n - production(text).count("\n")
    return total, test


def modules(root):
    files = {}
    for d, _, fs in os.walk(os.path.join(root, "src")):
        for f in fs:
            if f.endswith(".rs"):
                rel = os.path.relpath(os.path.join(d, f), os.path.join(root, "src"))[:-3].split(os.sep)
                mod = () if rel[-1] in ("lib", "main") else tuple(rel[:-1]) if rel[-1] == "mod" else tuple(rel)
                files[mod] = os.path.join(d, f)
    return files


def use_paths(tree, prefix=""):
    tree = tree.strip()
    m = re.match(r"^([\w:]*?)::\{(.*)\}$", tree, re.S)
    if m:
        base, inner, depth, cur, out = m.group(1), m.group(2), 0, "", []
        for c in inner:
            depth += c == "{"
            depth -= c == "}"
            if c == "," and depth == 0:
                out += use_paths(cur, prefix + base + "::")
                cur = ""
            else:
                cur += c
        return out + (use_paths(cur, prefix + base + "::") if cur.strip() else [])
    path, _, alias = tree.partition(" as ")
    path = prefix + path.strip()
    return [(path, alias.strip() or path.split("::")[-1])]


def cycles(root):
    files = modules(root)
    text = {m: production(open(p).read()) for m, p in files.items()}
    uses = {m: [(bool(u.group(1)), p, a) for u in re.finditer(r"(?m)^\s*(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", s)
                for p, a in use_paths(u.group(2))] for m, s in text.items()}
    reexports = {}

    def resolve(mod, path):
        parts = [p for p in path.split("::") if p]
        if not parts:
            return None
        if parts[0] == "crate":
            cur, parts = (), parts[1:]
        elif parts[0] in ("super", "self"):
            cur = mod
            while parts and parts[0] == "super":
                cur, parts = cur[:-1], parts[1:]
            if parts and parts[0] == "self":
                parts = parts[1:]
        elif mod + (parts[0],) in files:
            cur = mod
        else:
            return None
        for p in parts:
            if cur + (p,) in files:
                cur = cur + (p,)
                continue
            return reexports.get((cur, p), cur)
        return cur

    for _ in range(3):
        for mod, us in uses.items():
            for public, path, alias in us:
                target = resolve(mod, path)
                if public and target is not None:
                    reexports[(mod, alias)] = target
    edges = {m: set() for m in files}
    for mod, s in text.items():
        found = [resolve(mod, p) for _, p, _ in uses[mod]]
        found += [resolve(mod, m.group(1)) for m in
                  re.finditer(r"(?<![\w:])((?:crate|super|self)(?:::\w+)+)", re.sub(r"//[^\n]*", "", s))]
        edges[mod] = {t for t in found if t is not None and t != mod}
        body = re.sub(r"(?m)^\s*(pub(\([^)]*\))?\s+)?mod \w+;", "", s)
        for t in list(edges[mod]):
            if t[:-1] == mod and re.search(r"\bmod %s\s*;" % t[-1], s) and not re.search(r"\b%s::" % t[-1], body):
                edges[mod].discard(t)
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
            if len(comp) > 1:
                found.append(comp)

    for v in files:
        if v not in index:
            visit(v)
    name = lambda m: os.path.relpath(files[m], root)
    return [[(name(m), sorted(name(t) for t in edges[m] if t in comp)) for m in sorted(comp, key=name)]
            for comp in found]


def main():
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    crates = sys.argv[1:] or CRATES
    for crate in crates:
        if not os.path.isdir(os.path.join(crate, "src")):
            continue
        total, test = lines(crate)
        found = cycles(crate)
        print(f"{crate}: src/ {total} lines ({total - test} production, {test} unit tests); "
              f"{len(found)} module cycles, {sum(len(c) for c in found)} files in them")
        for comp in found:
            print("  cycle:", ", ".join(f for f, _ in comp))
            if len(sys.argv) > 1:
                for f, imports in comp:
                    print(f"    {f} -> {', '.join(imports)}")


if __name__ == "__main__":
    main()
