"""Lint: no production method over 50 lines (issue 14).

Production code is every Python file of the three addons (mpesa_payment,
mpesa_reconciliation, mpesa_reports) outside their tests/ and migrations/ folders.
A function's length runs from its ``def`` line to its last line (decorators not
counted, docstring and comments counted: a long docstring is a sign too).

    python setup/method_length.py [--max N] [PATH ...]

Without paths it reads the three addons below the repository root. Prints one line
per offender (``path:line name N lines``) and exits 1 when there is any.
"""

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADDONS = ("mpesa_payment", "mpesa_reconciliation", "mpesa_reports")
EXCLUDED_DIRS = {"tests", "migrations"}
MAX_LINES = 50


def production_files(paths):
    """The .py files below ``paths``, leaving out tests/ and migrations/ folders."""
    for base in paths:
        base = Path(base)
        files = [base] if base.is_file() else sorted(base.rglob("*.py"))
        for path in files:
            rel = path.relative_to(base) if path != base else Path(path.name)
            if path.suffix == ".py" and not EXCLUDED_DIRS & set(rel.parts[:-1]):
                yield path


def long_functions(path, max_lines=MAX_LINES):
    """(line, qualified name, length) of each function in ``path`` over ``max_lines``."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = child.end_lineno - child.lineno + 1
                if length > max_lines:
                    found.append((child.lineno, prefix + child.name, length))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "paths", nargs="*", help="files or folders (default: the three addons)"
    )
    parser.add_argument(
        "--max", type=int, default=MAX_LINES, help="longest allowed, in lines"
    )
    args = parser.parse_args(argv)
    paths = args.paths or [ROOT / addon for addon in ADDONS]
    offenders = 0
    for path in production_files(paths):
        for line, name, length in long_functions(path, args.max):
            try:
                shown = path.resolve().relative_to(ROOT)
            except ValueError:
                shown = path
            print(f"{shown}:{line} {name} {length} lines (max {args.max})")
            offenders += 1
    if offenders:
        print(f"{offenders} method(s) over {args.max} lines")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
