"""The ``crisis-monitor`` command line: a thin layer over the library; nothing imports it.

Imports are done inside each command so ``--help`` stays fast. Every
MonitorError becomes one line on stderr and exit status 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from monitor import __version__
from monitor.errors import MonitorError, UsageError
from monitor.listing import count, limit_option

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


def _rules_arg(args: argparse.Namespace) -> str | None:
    """The rules folder of ``rules check|test``: DIR or --rules DIR (both: the same one)."""
    if args.dir and args.rules and Path(args.dir) != Path(args.rules):
        raise UsageError(f"rules {args.rules_command}: the folder is given twice ({args.dir} and --rules "
                         f"{args.rules})", "give DIR or --rules DIR")
    rules: str | None = args.dir or args.rules
    return rules


def cmd_scan(args: argparse.Namespace) -> int:
    from monitor.scan import scan

    return scan(args.paths, _rules_dir(args.rules), args.format, sys.stdout, snippets=not args.no_snippets)


def cmd_rules_check(args: argparse.Namespace) -> int:
    from monitor.config import find_config, load_file
    from monitor.errors import ConfigError
    from monitor.routing import unknown_channels
    from monitor.rules.lint import rule_warnings
    from monitor.rules.loader import check_folder

    directory = _rules_dir(_rules_arg(args))
    specs, gazetteer, errors = check_folder(directory)
    problems: list[object] = list(errors)
    warnings = rule_warnings(specs)
    checked = ""
    # The channels rules name are checked against the config, when there is one to read.
    config_path = find_config(args.config, os.environ)
    if args.config or config_path.is_file():
        try:
            config = load_file(args.config, secrets=False)
        except ConfigError as error:
            problems.append(error)
        else:
            problems.extend(unknown_channels(specs, config.channels))
            poll = min((f.interval or config.poll_interval for f in config.feeds), default=config.poll_interval)
            warnings = rule_warnings(specs, {f.name for f in config.feeds}, {t for f in config.feeds for t in f.tags},
                                     poll)
            checked = f"; channels, feeds and tags checked against {config_path}"
    for problem in [*problems, *warnings]:
        print(problem)
    status = "ok" if not problems else count(len(problems), "problem")
    status += f", {count(len(warnings), 'warning')}" if warnings else ""
    print(f"{directory}: {count(len(specs), 'rule')}, {count(len(gazetteer.entities), 'entity', 'entities')}"
          f"{checked}: {status}", file=sys.stderr)
    return EXIT_USER if problems else EXIT_OK


def cmd_rules_test(args: argparse.Namespace) -> int:
    from monitor.rules.clauses import clause_examples, load_library
    from monitor.scan import load_rules, run_examples

    directory = _rules_dir(_rules_arg(args))
    rule_set = load_rules(directory)
    library, _ = load_library(directory / "lib", rule_set.gazetteer)  # loaded without errors just now
    failures, total = run_examples(rule_set, sys.stdout, clause_examples(library))
    print(f"{directory}: {count(total, 'example')} in {count(len(rule_set), 'rule')}, {failures} failed",
          file=sys.stderr)
    return EXIT_USER if failures else EXIT_OK


def cmd_rules_suggest(args: argparse.Namespace) -> int:
    from monitor.suggest import print_suggestions

    return print_suggestions(args.corpus, _rules_dir(args.rules), args.top, sys.stdout)


def cmd_rules_explain(args: argparse.Namespace) -> int:
    from monitor.rulecmds import explain

    return explain(args.rule, args.file, _rules_dir(args.rules), args.format, sys.stdout)


def cmd_rules_backtest(args: argparse.Namespace) -> int:
    from monitor.rulecmds import backtest

    return backtest(args.config, args.rules, args.against, args.since, args.paths, args.format, args.limit,
                    sys.stdout, default_rules_dir())


def cmd_rules_schema(args: argparse.Namespace) -> int:
    from monitor.rules.schemas import path

    sys.stdout.write(path(args.kind).read_text(encoding="utf-8"))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from monitor import commands

    return commands.run(args.config)


def cmd_poll(args: argparse.Namespace) -> int:
    from monitor import commands

    return commands.poll(args.config, args.feed, sys.stdout, args.strict, args.rules)


def cmd_feeds(args: argparse.Namespace) -> int:
    from monitor import commands

    if args.feeds_command == "list":
        return commands.feeds_list(args.config, args.format, sys.stdout)
    if args.feeds_command == "status":
        return commands.feeds_status(args.config, args.format, sys.stdout)
    if args.feeds_command == "import":
        return commands.feeds_import(args.config, args.opml, sys.stdout)
    return commands.feeds_export(args.config, sys.stdout)


def cmd_items(args: argparse.Namespace) -> int:
    from monitor import commands

    return commands.items_list(args.config, args.feed, args.since, args.format, sys.stdout, args.limit)


def cmd_matches(args: argparse.Namespace) -> int:
    from monitor import commands

    return commands.matches_list(args.config, args.rule, args.since, args.format, sys.stdout, args.limit)


def cmd_alerts(args: argparse.Namespace) -> int:
    from monitor import commands

    if args.alerts_command == "retry":
        if not args.id and not args.dead:
            raise UsageError("alerts retry: say which: an alert ID, or --dead for every dead delivery",
                             "see the ids with: crisis-monitor alerts list --status dead")
        return commands.alerts_retry(args.config, args.id, args.dead, sys.stdout)
    if args.alerts_command == "test":
        return commands.alerts_test(args.config, args.channel, sys.stdout)
    if args.alerts_command == "show":
        return commands.alerts_show(args.config, args.id, args.format, sys.stdout)
    return commands.alerts_list(args.config, args.status, args.format, sys.stdout, args.limit, args.rule, args.since)


def cmd_stories(args: argparse.Namespace) -> int:
    from monitor import commands

    if args.stories_command == "show":
        return commands.stories_show(args.config, args.id, args.format, sys.stdout)
    return commands.stories_list(args.config, args.rule, args.since, args.format, sys.stdout, args.limit)


def cmd_db(args: argparse.Namespace) -> int:
    from monitor import commands

    if args.db_command == "prune":
        return commands.db_prune(args.config, args.older_than, args.dry_run, args.format, sys.stdout)
    return commands.db_vacuum(args.config, sys.stdout)


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo import run_demo

    return run_demo(_rules_dir(args.rules), packaged("seeds") if not Path("seeds").is_dir() else Path("seeds"),
                    sys.stdout)


RULES_DIR_HELP = "rules folder (default: ./rules, else the rules shipped with the package)"


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="config file (default: $CRISIS_MONITOR_CONFIG, else "
                        "./config.toml, else /etc/crisis-monitor/config.toml)")


def _format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text: a table; json: one JSON array of objects (default: text)")


def _service_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="the daemon, in the foreground (systemd runs exactly this)",
                              description="Poll every feed on its schedule, match new items, deliver alerts; "
                              "SIGHUP or a change under the rules folder reloads; SIGTERM stops.")
    _config_option(run)
    run.set_defaults(handler=cmd_run)
    poll = commands.add_parser("poll", help="one polling cycle of every (or one) feed, then exit",
                               description="Poll every feed (or one) once, match, store, check the rules' surges "
                               "and the story updates a cooldown held back, deliver alerts, print a summary and "
                               "exit.")
    _config_option(poll)
    poll.add_argument("--feed", metavar="NAME", help="poll only this feed")
    poll.add_argument("--rules", metavar="DIR", help="rules folder (default: the config's [monitor] rules)")
    poll.add_argument("--strict", action="store_true",
                      help="exit 1 when any feed failed (without it: when every feed failed or a delivery failed)")
    poll.set_defaults(handler=cmd_poll)

    feeds = commands.add_parser("feeds", help="feed list, health table, OPML in and out",
                                description="The configured feeds, their health, OPML import and export.")
    feed_commands = feeds.add_subparsers(dest="feeds_command", metavar="SUBCOMMAND", required=True)
    listing = feed_commands.add_parser("list", help="the feeds in config.toml", description="The configured feeds.")
    status = feed_commands.add_parser("status", help="feed health: status, items, last poll, next poll, errors",
                                      description="Feed health: status (ok, not_modified, error, gone, stale, "
                                      "never), stored items, last and next poll, the last error.")
    importing = feed_commands.add_parser("import", help="append the feeds of an OPML file to config.toml",
                                         description="Append the feeds of an OPML file that are not configured "
                                         "yet to config.toml as [[feeds]] tables.")
    importing.add_argument("opml", metavar="OPML", help="an OPML file exported from a feed reader")
    export = feed_commands.add_parser("export", help="print the feeds as OPML 2.0",
                                      description="Print the configured feeds as OPML 2.0 on stdout.")
    for sub in (listing, status, importing, export):
        _config_option(sub)
        sub.set_defaults(handler=cmd_feeds)
    for sub in (listing, status):
        _format_option(sub)

    demo = commands.add_parser("demo", help="offline end-to-end run: the seed corpus as several outlets' local "
                               "feeds, polled, alerts to the console and a local webhook",
                               description="Serve the seed corpus as the RSS feeds of several outlets on 127.0.0.1 "
                               "(originals first, then republished copies), poll them twice with the rules into a "
                               "temporary database, deliver to the console and to a local webhook receiver that "
                               "checks every signature, print the alerts and updates, and say how many alerts "
                               "grouping reports into stories saved. Offline; keeps nothing.")
    demo.add_argument("--rules", metavar="DIR", help="rules folder (default: ./rules, else the shipped rules)")
    demo.set_defaults(handler=cmd_demo)

    items = commands.add_parser("items", help="what was ingested", description="Stored items, newest first.")
    item_commands = items.add_subparsers(dest="items_command", metavar="SUBCOMMAND", required=True)
    items_list = item_commands.add_parser("list", help="list stored items", description="Stored items, newest first.")
    items_list.add_argument("--feed", metavar="NAME", help="only this feed's items")
    items_list.add_argument("--since", metavar="DURATION", help='only items first seen within it, e.g. "24h"')
    matches = commands.add_parser("matches", help="what matched, with the matched terms",
                                  description="Rule matches, newest first.")
    match_commands = matches.add_subparsers(dest="matches_command", metavar="SUBCOMMAND", required=True)
    matches_list = match_commands.add_parser("list", help="list matches", description="Rule matches, newest first.")
    matches_list.add_argument("--rule", metavar="ID", help="only this rule's matches")
    matches_list.add_argument("--since", metavar="DURATION", help='only matches made within it, e.g. "24h"')
    stories = commands.add_parser("stories", help="reports of one event grouped: items, publishers, alerts",
                                  description="Stories: the items, from any feeds, that report one event.")
    story_commands = stories.add_subparsers(dest="stories_command", metavar="SUBCOMMAND", required=True)
    stories_list = story_commands.add_parser(
        "list", help="list the stories rules matched",
        description="The stories a rule matched, last seen newest first: items, publishers (distinct outlets), "
        "the rules that matched, the alerts sent by kind (alert, update, surge), the first item's title.")
    stories_list.add_argument("--rule", metavar="ID", help="only the stories this rule matched")
    stories_list.add_argument("--since", metavar="DURATION", help='only stories last seen within it, e.g. "24h"')
    show = story_commands.add_parser(
        "show", help="one story: items, publishers, timeline, rules, alerts sent",
        description="One story: its items by time (feed, publisher, time, URL, the rules each matched), its "
        "publishers, a timeline of items and alerts, and each alert sent with its kind and delivery status.")
    show.add_argument("id", metavar="ID", help="a story id from stories list (or matches list, alerts list)")
    show.add_argument("--format", choices=("text", "json"), default="text",
                      help="text: a summary and tables; json: one object (default: text)")
    _config_option(show)
    show.set_defaults(handler=cmd_stories)
    alerts = commands.add_parser("alerts", help="alert delivery state", description="Alerts and their deliveries.")
    alert_commands = alerts.add_subparsers(dest="alerts_command", metavar="SUBCOMMAND", required=True)
    alerts_list = alert_commands.add_parser("list", help="list deliveries", description="Deliveries, newest first.")
    alerts_list.add_argument("--status", choices=("pending", "delivered", "dead"), help="only this status")
    alerts_list.add_argument("--rule", metavar="ID", help="only this rule's alerts")
    alerts_list.add_argument("--since", metavar="DURATION", help='only deliveries made within it, e.g. "24h"')
    show_alert = alert_commands.add_parser(
        "show", help="one alert: its deliveries and every attempt to send them",
        description="One alert: its rule, kind, story and item; each delivery's status; and every attempt to "
        "send it, oldest first: time, channel, attempt number, outcome (delivered; retry: failed, tried again "
        "later; dead: failed for good; retried: made pending again by alerts retry), the receiver's status "
        "code (HTTP or SMTP) when it answered, the error.")
    show_alert.add_argument("id", metavar="ID", help="an alert id from alerts list")
    show_alert.add_argument("--format", choices=("text", "json"), default="text",
                            help="text: a summary and tables; json: one object (default: text)")
    retry = alert_commands.add_parser("retry", help="make dead (or one alert's) deliveries pending again",
                                      description="Make an alert's undelivered deliveries, or every dead one, "
                                      "pending again, with a fresh count of attempts; the daemon sends them "
                                      "within seconds. The attempts so far stay in the history alerts show "
                                      "prints.")
    retry.add_argument("id", nargs="?", metavar="ID", help="an alert id from alerts list")
    retry.add_argument("--dead", action="store_true", help="every dead delivery")
    test = alert_commands.add_parser("test", help="send a sample alert through a channel and say what happened",
                                     description="Send a sample alert through the real channel (not the outbox) "
                                     "and say whether it was accepted; exit 1 if not.")
    test.add_argument("channel", metavar="CHANNEL", help="a channel name from config.toml")
    for sub in (show_alert, retry, test):
        _config_option(sub)
        sub.set_defaults(handler=cmd_alerts)
    for sub, handler, what in ((items_list, cmd_items, "items"), (matches_list, cmd_matches, "matches"),
                               (stories_list, cmd_stories, "stories"), (alerts_list, cmd_alerts, "deliveries")):
        _config_option(sub)
        _format_option(sub)
        limit_option(sub, what)
        sub.set_defaults(handler=handler)


def _db_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = commands.add_parser("db", help="database upkeep: prune old rows, vacuum",
                             description="Database upkeep: prune what is older than the retention, vacuum.")
    db_commands = db.add_subparsers(dest="db_command", metavar="SUBCOMMAND", required=True)
    prune = db_commands.add_parser(
        "prune", help="delete items, matches, stories and delivered alerts older than the retention",
        description="Delete items first seen longer ago than the retention, with their matches, full text and "
        "story signatures; the alerts of stories with nothing newer, with their deliveries, once every delivery "
        "is delivered (an alert with a pending or dead delivery stays, and its story, items and matches with it); "
        "and the stories left with no item. Pruned items stay known by a hash of their guid, so a feed that "
        "still carries one never makes it new again. Short transactions, one per 200 items: a running daemon "
        "goes on polling and delivering. Prints the rows per table.")
    prune.add_argument("--older-than", metavar="DURATION",
                       help='what is old, e.g. "180d" (default: [monitor] retention; at least [stories] window)')
    prune.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")
    prune.add_argument("--format", choices=("text", "json"), default="text",
                       help="text: a table; json: one object (default: text)")
    vacuum = db_commands.add_parser(
        "vacuum", help="SQLite: shrink the file after a prune; PostgreSQL: VACUUM (ANALYZE)",
        description="SQLite: VACUUM, which rewrites the file without the pages pruned rows freed (it needs free "
        "disk space as large as the database and holds the write lock while it runs: a daemon's writes wait), "
        "then truncates the WAL. PostgreSQL: VACUUM (ANALYZE) of crisis-monitor's tables, which makes the "
        "space of deleted rows reusable and refreshes statistics without blocking the daemon; autovacuum does "
        "the same on its own, and the files keep their size.")
    for sub in (prune, vacuum):
        _config_option(sub)
        sub.set_defaults(handler=cmd_db)


def _rule_tools(rule_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    explain = rule_commands.add_parser(
        "explain", help="why a rule does or does not match a document: its query tree, node by node",
        description="Print a rule's query tree over each document of FILE (as scan reads it; - reads stdin: "
        "JSON lines, or else plain text as one document), each node true (✓) or false (✗) with its hits; "
        "named clauses ($name) show their own tree.")
    explain.add_argument("rule", metavar="RULE", help="a rule id")
    explain.add_argument("file", metavar="FILE", help="a document file, or - for stdin")
    explain.add_argument("--rules", metavar="DIR", help=RULES_DIR_HELP)
    explain.add_argument("--format", choices=("text", "json"), default="text",
                         help="text: an indented tree; json: one array, a tree per document (default: text)")
    explain.set_defaults(handler=cmd_rules_explain)
    backtest = rule_commands.add_parser(
        "backtest", help="run a rule set over the stored items (or files) and diff it against another",
        description="Run the rules over the items already stored (or over PATHs, as scan reads them) and "
        "print what each rule matches; with --against, the items each rule would newly match and would "
        "no longer match, with titles and snippets. Only the rules that differ are matched twice.")
    backtest.add_argument("paths", nargs="*", metavar="PATH", help="documents to use instead of the stored "
                          "items: files or folders as scan reads them")
    backtest.add_argument("--rules", metavar="DIR", help="the rules to try (default: the config's rules folder, "
                          "else ./rules, else the shipped rules)")
    backtest.add_argument("--against", metavar="DIR|GIT-REV", help="the baseline: a rules folder, or a git "
                          "revision (HEAD~1, main, a tag) of the --rules folder, read with git archive")
    backtest.add_argument("--since", metavar="DURATION", help='only stored items first seen within it, e.g. "30d"')
    backtest.add_argument("--format", choices=("text", "json"), default="text",
                          help="text: per rule, counts and items; json: one object (default: text)")
    backtest.add_argument("--limit", type=int, default=20, metavar="N",
                          help="items listed per rule and list (default: 20; 0: all)")
    _config_option(backtest)
    backtest.set_defaults(handler=cmd_rules_backtest)
    schema = rule_commands.add_parser(
        "schema", help="print the JSON Schema of rule, rules/lib or gazetteer files, for editors",
        description="Print the JSON Schema of rule files (rule), rules/lib/ files (lib) or gazetteer files "
        "(entities). yaml-language-server validates and completes a file whose first line is "
        "'# yaml-language-server: $schema=PATH'; the schemas ship in the package as monitor/schemas/*.json.")
    schema.add_argument("kind", nargs="?", choices=("rule", "lib", "entities"), default="rule",
                        help="which schema (default: rule)")
    schema.set_defaults(handler=cmd_rules_schema)


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
    scan.add_argument("--no-snippets", action="store_true",
                      help="leave out each match's snippet (no snippet line in text, no \"snippet\" key in "
                      "JSON): nothing is cut from the text, which saves much of the time a match costs")
    scan.set_defaults(handler=cmd_scan)

    rules = commands.add_parser("rules", help="check, test and start rules",
                                description="Validate, test and start rule files.")
    rule_commands = rules.add_subparsers(dest="rules_command", metavar="SUBCOMMAND", required=True)
    check = rule_commands.add_parser(
        "check", help="validate every rule and entity file",
        description="Validate every rule and entity file, and the channels rules name against the "
        "config; print every problem as file:line:col: message; exit 1 on any error.")
    check.add_argument("dir", nargs="?", metavar="DIR", help=RULES_DIR_HELP)
    check.add_argument("--rules", metavar="DIR", help="the same as DIR")
    check.add_argument("--config", metavar="PATH",
                       help="also check the channels rules name against this config (default: the config "
                       "found as for run: $CRISIS_MONITOR_CONFIG, ./config.toml, /etc/crisis-monitor/config.toml; "
                       "none found, no channel check)")
    check.set_defaults(handler=cmd_rules_check)
    test = rule_commands.add_parser(
        "test", help="run each rule's own examples",
        description="Run each rule's examples (match and no_match) against the rule set, and each named "
        "clause's examples (define: in a rule, rules/lib/) against the clause alone; exit 1 on any failure.")
    test.add_argument("dir", nargs="?", metavar="DIR", help=RULES_DIR_HELP)
    test.add_argument("--rules", metavar="DIR", help="the same as DIR")
    test.set_defaults(handler=cmd_rules_test)
    suggest = rule_commands.add_parser(
        "suggest", help="rank phrases and entities distinctive of a corpus",
        description="Rank the phrases and entities that set a corpus apart from general "
        "English, to start a rule from a handful of documents.")
    suggest.add_argument("corpus", nargs="+", metavar="CORPUS", help="files or folders, as scan reads")
    suggest.add_argument("--rules", metavar="DIR", help="rules folder whose gazetteer names entities")
    suggest.add_argument("--top", type=int, default=20, help="how many phrases (default: 20)")
    suggest.set_defaults(handler=cmd_rules_suggest)
    _rule_tools(rule_commands)
    _service_commands(commands)
    _db_commands(commands)
    return parser


def _leaves(parser: argparse.ArgumentParser) -> None:
    """Let every command know its own parser, so a usage error prints that command's usage."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.set_defaults(command_parser=sub)
                _leaves(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    _leaves(parser)
    args, extra = parser.parse_known_args(argv)
    command: argparse.ArgumentParser = getattr(args, "command_parser", parser)
    if extra:
        command.error(f"unrecognized arguments: {' '.join(extra)}")  # exits 2
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return handler(args)
    except UsageError as error:
        command.print_usage(sys.stderr)
        print(f"{command.prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except MonitorError as error:
        print(f"crisis-monitor: {error}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
