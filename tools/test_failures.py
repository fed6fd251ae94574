#!/usr/bin/env python3
"""Print the failed and errored tests of pytest JUnit XML reports, with the end of each failure text.

`make test-molecule` calls it when Molecule fails: the verifier's own summary is followed by the later
scenarios and the destroy step, so a CI log that keeps only its last lines would not say which test failed.
Exit code 0 always: the caller decides.
"""
from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def failures(report: Path):
    """(test id, kind, message, text) for each failed or errored test case of one report."""
    try:
        root = ET.parse(report).getroot()
    except (OSError, ET.ParseError) as exc:
        yield (str(report), "unreadable", str(exc), "")
        return
    for case in root.iter("testcase"):
        for kind in ("failure", "error"):
            node = case.find(kind)
            if node is not None:
                test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
                yield test_id, kind, node.get("message") or "", node.text or ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="JUnit XML files or directories holding them")
    parser.add_argument("--lines", type=int, default=25, help="last lines of each failure text to print")
    args = parser.parse_args(argv)
    files = []
    for path in args.reports:
        files += sorted(path.glob("*.xml")) if path.is_dir() else [path]
    found = 0
    for report in files:
        for test_id, kind, message, text in failures(report):
            found += 1
            print(f"\n=== {kind.upper()}: {test_id}  ({report.name})", file=sys.stderr)
            if message:
                print(f"    {message[:500]}", file=sys.stderr)
            for line in text.rstrip().splitlines()[-args.lines:]:
                print(f"    | {line}", file=sys.stderr)
    print(f"\n{found} failed or errored test(s) in {len(files)} report(s): "
          f"{', '.join(str(f) for f in files) or 'none written'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
