#!/usr/bin/env python3
"""Fails when a source file includes what its folder's layer may not use.

The rules are the table of docs/architecture.md, kept here as data: for each library folder,
the project folders it may include from, and the outside libraries it must not include.
Every `#include "..."` of every .h/.cc under those folders is checked; a violation prints
`file:line: ...` and the script exits 1. bench/, fuzz/ and tests/ may include anything.

usage: scripts/check-layering.py [repository root]     (default: this script's parent)
"""

import os
import re
import sys

# Project folders a folder may include from (its own is always allowed). A file-level
# exception is written "folder/file.h": only that header of the folder.
ALLOWED = {
    "common": [],
    "core": ["common"],
    "learn": ["core", "common"],
    "storage": ["core", "common"],
    "api": ["core", "common"],
    "edge": ["common"],
    # The embedded collector: coupond can serve the Collector service (its store, service and
    # metrics) and logs its decisions through the logger; nothing else of the collector.
    "server": ["api", "core", "storage", "edge", "common",
               "collector/decision_logger.h", "collector/collector_service.h",
               "collector/collector_store.h", "collector/collector_metrics.h"],
    "collector": ["edge", "common"],
    "pipeline": ["learn", "core", "storage", "common"],
    "analysis": ["core", "common", "pipeline/csv.h"],
    "client": [],
    "cli": ["client", "api", "pipeline", "learn", "storage", "analysis", "core", "edge", "common",
            "collector/collector_store.h"],
}

# Outside libraries (include prefixes) a folder must not use.
PROTO = ("coupond/v1/", "google/protobuf/")
GRPC = ("grpcpp/", "grpc/")
ROCKSDB = ("rocksdb/",)
FILE_IO = ("<fstream>", "<filesystem>")
FORBIDDEN_EXTERNAL = {
    # common's two mappings are the only places rocksdb/ and grpcpp/ status types meet absl.
    "common": {"allow_only": ["absl/", "rocksdb/status.h", "grpcpp/support/status.h"]},
    "core": {"deny": PROTO + GRPC + ROCKSDB + FILE_IO},
    "learn": {"deny": PROTO + GRPC + ROCKSDB + FILE_IO},
    "storage": {"deny": PROTO + GRPC},
    "api": {"deny": ROCKSDB + GRPC},
    "edge": {"deny": ROCKSDB + ("coupond/v1/",)},
    "collector": {"deny": ()},
    "server": {"deny": ()},
    "pipeline": {"deny": PROTO + GRPC},
    "analysis": {"deny": PROTO + GRPC + ROCKSDB},
    "client": {"deny": ROCKSDB},
    "cli": {"deny": ()},
}

PROJECT_FOLDERS = set(ALLOWED) | {"proto", "bench", "fuzz", "tests"}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def check_file(root, folder, path):
    problems = []
    rel = os.path.relpath(path, root)
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            bracket, target = m.group(1), m.group(2)
            spelled = f"<{target}>" if bracket == "<" else f'"{target}"'
            top = target.split("/", 1)[0]
            if bracket == '"' and "/" in target and top in PROJECT_FOLDERS:
                if top == folder:
                    continue
                allowed = ALLOWED[folder]
                if top in allowed or target in allowed:
                    continue
                problems.append(f"{rel}:{number}: includes {spelled}: {folder}/ may not use "
                                f"{top}/ (may use: {', '.join(allowed) or 'no other folder'}; "
                                f"docs/architecture.md)")
                continue
            rule = FORBIDDEN_EXTERNAL[folder]
            if "allow_only" in rule:
                if bracket == '"' and not any(target.startswith(p) for p in rule["allow_only"]):
                    problems.append(f"{rel}:{number}: includes {spelled}: {folder}/ uses only "
                                    f"{', '.join(rule['allow_only'])} (docs/architecture.md)")
                continue
            for prefix in rule["deny"]:
                if (prefix.startswith("<") and spelled == prefix) or \
                   (not prefix.startswith("<") and target.startswith(prefix)):
                    problems.append(f"{rel}:{number}: includes {spelled}: "
                                    f"{folder}/ may not use {prefix} (docs/architecture.md)")
    return problems


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    problems = []
    checked = 0
    for folder in sorted(ALLOWED):
        base = os.path.join(root, folder)
        if not os.path.isdir(base):
            problems.append(f"{folder}/: missing (scripts/check-layering.py names it)")
            continue
        for dirpath, _, names in os.walk(base):
            for name in sorted(names):
                if name.endswith((".h", ".cc")):
                    checked += 1
                    problems.extend(check_file(root, folder, os.path.join(dirpath, name)))
    for p in problems:
        print(p)
    if problems:
        print(f"check-layering: {len(problems)} forbidden include(s) in {checked} files", file=sys.stderr)
        return 1
    print(f"check-layering: {checked} files follow docs/architecture.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
