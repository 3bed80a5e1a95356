"""The ``crisis-monitor`` command line: a thin layer over the library; nothing imports it.

Imports are done inside each command so ``--help`` stays fast. Every
MonitorError becomes one line on stderr and exit status 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from monitor import __version__
from monitor.errors import MonitorError

EXIT_OK, EXIT_USER, EXIT_USAGE = 0, 1, 2

Handler = Callable[[argparse.Namespace], int]


def packaged(name: str) -> Path:
    """A data folder or file shipped inside the package (rules, seeds, config.toml)."""
    return Path(__file__).resolve().parent / "_data" / name


def default_rules_dir() -> Path:
    """``./rules`` when it exists, else the rules shipped with the package."""
    local = Path("rules")
    return local if local.is_dir() else packaged("rules")


def _rules_dir(value: str | None) -> Path:
    return Path(value) if value else default_rules_dir()


def cmd_scan(args: argparse.Namespace) -> int:
    from monitor.scan import scan

    return scan(args.paths, _rules_dir(args.rules), args.format, sys.stdout)


def cmd_rules_check(args: argparse.Namespace) -> int:
    from monitor.rules.loader import check_folder

    directory = _rules_dir(args.dir)
    specs, gazetteer, errors = check_folder(directory)
    for error in errors:
        print(error)
    status = "ok" if not errors else f"{len(errors)} problem(s)"
    print(f"{directory}: {len(specs)} rules, {len(gazetteer.entities)} entities: {status}",
          file=sys.stderr)
    return EXIT_USER if errors else EXIT_OK


def cmd_rules_test(args: argparse.Namespace) -> int:
    from monitor.scan import load_rules, run_examples

    directory = _rules_dir(args.dir)
    rule_set = load_rules(directory)
    failures, total = run_examples(rule_set, sys.stdout)
    print(f"{directory}: {total} examples in {len(rule_set)} rules, {failures} failed",
          file=sys.stderr)
    return EXIT_USER if failures else EXIT_OK


def cmd_rules_suggest(args: argparse.Namespace) -> int:
    from monitor.suggest import print_suggestions

    return print_suggestions(args.corpus, _rules_dir(args.rules), args.top, sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crisis-monitor",
        description="Crisis-monitoring alert daemon: feeds in, rules over every item, alerts out.",
        epilog="Exit status: 0 ok, 1 user error (bad rule, bad input), 2 usage.")
    parser.add_argument("--version", action="version", version=f"crisis-monitor {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    scan = commands.add_parser(
        "scan", help="run the rules over documents (no database, no network)",
        description="Run the rules over documents: .txt/.md files (one document each), "
        ".jsonl files (one document per line: id plus title, summary, content or text), "
        ".xml/.rss/.atom feed files (one document per entry); folders are read "
        "recursively; - reads JSON lines from stdin.")
    scan.add_argument("paths", nargs="+", metavar="PATH", help="file, folder, or - for stdin")
    scan.add_argument("--rules", metavar="DIR", help="rules folder (default: ./rules, else the "
                      "shipped rules)")
    scan.add_argument("--format", choices=("text", "json", "jsonl"), default="text",
                      help="text: matches with highlighted terms; json: one array; jsonl: one "
                      "line per document, matched or not (default: text)")
    scan.set_defaults(handler=cmd_scan)

    rules = commands.add_parser("rules", help="check, test and start rules",
                                description="Validate, test and start rule files.")
    rule_commands = rules.add_subparsers(dest="rules_command", metavar="SUBCOMMAND", required=True)
    check = rule_commands.add_parser(
        "check", help="validate every rule and entity file",
        description="Validate every rule and entity file; print every problem as "
        "file:line:col: message; exit 1 on any error.")
    check.add_argument("dir", nargs="?", metavar="DIR", help="rules folder (default: ./rules)")
    check.set_defaults(handler=cmd_rules_check)
    test = rule_commands.add_parser(
        "test", help="run each rule's own examples",
        description="Run each rule's examples (match and no_match); exit 1 on any failure.")
    test.add_argument("dir", nargs="?", metavar="DIR", help="rules folder (default: ./rules)")
    test.set_defaults(handler=cmd_rules_test)
    suggest = rule_commands.add_parser(
        "suggest", help="rank phrases and entities distinctive of a corpus",
        description="Rank the phrases and entities that set a corpus apart from general "
        "English, to start a rule from a handful of documents.")
    suggest.add_argument("corpus", nargs="+", metavar="CORPUS", help="files or folders, as scan reads")
    suggest.add_argument("--rules", metavar="DIR", help="rules folder whose gazetteer names entities")
    suggest.add_argument("--top", type=int, default=20, help="how many phrases (default: 20)")
    suggest.set_defaults(handler=cmd_rules_suggest)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return handler(args)
    except MonitorError as error:
        print(f"crisis-monitor: {error}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
