"""The `verbatim` command line: a thin layer over `build_index` and `Answerer.answer`.

Only the standard library and index.errors (which imports nothing) are imported
at module level, so that Ctrl-C during start-up (settings, torch, the model)
lands inside `main`'s handlers.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from index.errors import VerbatimError  # no imports of its own: start-up stays stdlib-only

if TYPE_CHECKING:
    from config import Settings

# Exit codes, as documented in the README.
EXIT_OK = 0
EXIT_NOT_ANSWERED = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

# Quote counts --top accepts: the same bounds as the top_quotes setting.
TOP_RANGE = range(1, 11)
# Typed in `verbatim chat`, forgets the previous question: the next one is not read as a follow-up.
NEW_CONVERSATION = "/new"

EPILOG = (
    "Exit codes: 0 answered/ok, 1 the documents don't answer (refused, or only a \"not sure\" passage), 2 error (one line on stderr), 130 interrupted. "
    "Relative paths (options, VERBATIM_* variables, .env) are taken from the working directory; ~ is expanded. "
    "Without --index or VERBATIM_INDEX_DIR each corpus gets its own index, <data_dir>/index/<corpus name>-<hash>, "
    "where data_dir is the user's data directory (e.g. ~/.local/share/verbatim) unless VERBATIM_DATA_DIR names one."
)


class UsageError(Exception):
    """The command line does not parse; reported as one line, exit 2."""


class UnwritablePath(VerbatimError):
    """A directory or file the settings name can't be created or written."""


class _Parser(argparse.ArgumentParser):
    # argparse prints the whole usage before its error; the contract is one line.
    def error(self, message: str):
        raise UsageError(f"{self.prog}: error: {message} (see `{self.prog} --help`)")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    # onnxruntime (1.32) writes a device id and a telemetry database under
    # ~/.cache/Microsoft/DeveloperTools when it starts, unless this is set before
    # it is imported; disable_telemetry_events() after import is too late.
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    arguments = argparse.Namespace()  # until parsed: an error's hints name no options
    try:
        parser = _parser()
        arguments = parser.parse_args(argv)
        if not hasattr(arguments, "handler"):
            parser.print_help(sys.stderr)
            return EXIT_ERROR
        from config import load_settings
        from config.settings import discord_settings

        settings = load_settings(
            () if arguments.handler is _discord else discord_settings(),
            corpus_dir=getattr(arguments, "corpus", None), index_dir=getattr(arguments, "index", None),
        )
        if hasattr(arguments, "shelf"):
            settings = _shelf_settings(settings, arguments)
        return arguments.handler(settings, arguments)
    except KeyboardInterrupt:
        print("verbatim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as error:
        print(f"{error}", file=sys.stderr)
        return EXIT_ERROR
    except VerbatimError as error:
        from bot.cli.hints import with_build_command

        # A remedy such as `verbatim index build` must build the index this command asked about.
        print(f"verbatim: error: {with_build_command(str(error), arguments)}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # The reader went away (`verbatim ask ... | head`): not an error.
        _stdout_to_devnull()
        return EXIT_OK
    except OSError as error:
        print(f"verbatim: error: {_os_error_line(error)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as error:  # noqa: BLE001 - a bug too is reported in one line, never a traceback
        print(f"verbatim: error: unexpected {type(error).__name__}: {error} (please report it)", file=sys.stderr)
        return EXIT_ERROR


def run() -> None:
    """The `verbatim` command: main(), then exit without tearing the interpreter down."""
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader left before the last of the output: not an error
        _stdout_to_devnull()
    sys.stderr.flush()
    # Freeing onnxruntime's sessions and unloading every module is a good part of a cold question's
    # time (`make bench-speed` measures the whole). Nothing is left to lose once output is flushed, exit
    # handlers (a cluster's shutdown, temporary files' finalizers) have run and no other thread still works.
    if threading.active_count() == 1:
        atexit._run_exitfuncs()
        os._exit(code)
    sys.exit(code)


def _stdout_to_devnull() -> None:
    # Once the reader has gone, any later flush (the interpreter's last one, too) stays quiet.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _shelf_settings(settings: Settings, arguments: argparse.Namespace) -> Settings:
    """The settings of the shelf named by --shelf: its corpus, index and feedback."""
    from bot.shelves.shelves import shelf_named

    if hasattr(arguments, "corpus") or hasattr(arguments, "index"):
        raise UsageError("verbatim: error: --shelf names a corpus and its index: give it without --corpus or --index")
    return shelf_named(settings, arguments.shelf).settings


def _os_error_line(error: OSError) -> str:
    if error.filename is None:
        return error.strerror or str(error)
    return f"cannot use {error.filename}: {error.strerror or error}"


def _parser() -> argparse.ArgumentParser:
    # SUPPRESS: a subcommand's unset option must not overwrite one given before it.
    common = _Parser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--corpus", type=Path, metavar="DIR", help="documents to index (default: settings corpus_dir)")
    common.add_argument("--index", type=Path, metavar="DIR",
                        help="where the index lives (default: settings index_dir, else one per corpus under <data_dir>/index)")
    common.add_argument("--shelf", metavar="NAME",
                        help="a configured shelf's corpus, index and feedback (`verbatim shelf list`)")
    parser = _Parser(
        prog="verbatim",
        description="Answer questions with verbatim, cited quotes from your documents.",
        epilog=EPILOG,
        parents=[common],
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    # Listed in --help in the order added: the everyday commands first.
    commands = parser.add_subparsers(metavar="COMMAND")

    ask = commands.add_parser(
        "ask", help="answer a question (or one per line from stdin)", parents=[common],
        description="Answer QUESTION with quotes; with no QUESTION, answer each line of stdin "
        "(in text mode each answer is headed by `Q: ` and its question).",
        epilog="Exit codes: 0 answered (with stdin: every question was answered), 1 not answered "
        "(with stdin: at least one question was refused or rejected), 2 error, 130 interrupted. "
        "Bytes that are not UTF-8 in a question are replaced by U+FFFD, with a note on stderr.",
    )
    ask.add_argument("question", nargs="?", help="the question; omit it to read questions from stdin")
    ask.add_argument("--top", type=_bounded(TOP_RANGE), metavar="N",
                     help=f"at most N quotes, {TOP_RANGE.start}..{TOP_RANGE.stop - 1} (default: settings top_quotes)")
    ask.add_argument("--json", action="store_true", help="one JSON object per answer")
    _add_source_option(ask)
    ask.set_defaults(handler=_ask)

    chat = commands.add_parser(
        "chat", help="ask questions interactively", parents=[common],
        description="Ask questions one after another. A short follow-up (\"and when was that?\") is read with the "
        f"key words of the question before it and prefers the documents its answer cited; {NEW_CONVERSATION} starts over.",
    )
    chat.add_argument("--top", type=_bounded(TOP_RANGE), metavar="N",
                      help=f"at most N quotes, {TOP_RANGE.start}..{TOP_RANGE.stop - 1} (default: settings top_quotes)")
    _add_source_option(chat)
    chat.set_defaults(handler=_chat)

    index = commands.add_parser("index", help="build or inspect the index", parents=[common])
    index_commands = index.add_subparsers(metavar="ACTION")
    build = index_commands.add_parser("build", help="index the corpus (skipped when up to date)", parents=[common])
    build.add_argument("--full", action="store_true", help="rebuild even if the index looks up to date")
    build.add_argument("--allow-empty", "--force", dest="allow_empty", action="store_true",
                       help="publish the index even if it drops all or most of the indexed documents")
    build.add_argument("--json", action="store_true", help="print the summary as JSON")
    build.add_argument("--cluster", metavar="ADDRESS",
                       help="read and embed on a Ray cluster: 'auto' starts a local one on every core "
                            "(default: settings build_cluster; needs pip install '.[cluster]')")
    build.add_argument("--verbose", "-v", action="store_true", help="name every skipped file and why")
    build.set_defaults(handler=_index_build)
    status = index_commands.add_parser("status", help="describe the current index", parents=[common])
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(handler=_index_status)
    show = index_commands.add_parser("show", help="print the indexed text of a document", parents=[common],
                                     description="Print the text quotes are cut from (for HTML and PDF, the extracted text).")
    show.add_argument("source", metavar="SOURCE", help="the document's path relative to the corpus")
    show.add_argument("--json", action="store_true", help="print title, kind, pages and text as JSON")
    show.set_defaults(handler=_index_show)
    watch = index_commands.add_parser("watch", help="rebuild incrementally whenever the corpus changes", parents=[common])
    watch.add_argument("--json", action="store_true", help="print each build's summary as JSON")
    watch.add_argument("--verbose", "-v", action="store_true", help="name every skipped file, not just the first few")
    watch.set_defaults(handler=_index_watch)

    evaluate = commands.add_parser(
        "eval", help="measure answer quality on SQuAD-style questions", parents=[common],
        description="Build a throwaway index of QA_FILE's articles (plus distractors) and score every answer. "
        "QA_FILE is SQuAD JSON (v1.1/v2.0) or JSONL lines {\"question\": str, \"answers\": [str]} "
        "(then --corpus gives the documents).",
    )
    evaluate.add_argument("qa_file", type=Path, metavar="QA_FILE")
    evaluate.add_argument("--distractors", type=Path, nargs="*", default=[], metavar="FILE",
                          help="SQuAD files whose paragraphs are added to the index, questions ignored")
    evaluate.add_argument("--holdout-articles", type=_bounded(range(0, sys.maxsize)), default=0, metavar="K",
                          help="leave the last K articles out and count their questions as out-of-corpus")
    evaluate.add_argument("--limit", type=_bounded(range(1, sys.maxsize)), metavar="N", help="ask only the first N questions")
    evaluate.add_argument("--slice", choices=("train", "calib", "test"),
                          help="only one fixed slice of the articles (by title hash: train 70%%, calib 10%%, test 20%%)")
    evaluate.add_argument("--json", action="store_true", help="print the report as one JSON object")
    evaluate.set_defaults(handler=_eval)

    discord_command = commands.add_parser(
        "discord", help="run the Discord bot", parents=[common],
        description="Run the Discord bot (token from VERBATIM_DISCORD_TOKEN). Commands are synced to "
        "discord_guild_ids on start; --sync also syncs them globally (do it only when commands change).",
    )
    discord_command.add_argument("--sync", action="store_true", help="sync slash commands globally on start")
    discord_command.set_defaults(handler=_discord)

    feedback = commands.add_parser("feedback", help="work with 👍/👎 feedback from Discord", parents=[common])
    feedback_commands = feedback.add_subparsers(metavar="ACTION")
    export = feedback_commands.add_parser("export", help="write the feedback as JSONL", parents=[common])
    export.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here instead of stdout")
    export.set_defaults(handler=_feedback_export)
    feedback_report = feedback_commands.add_parser(
        "report", help="what the documents are missing: unanswered questions, quotes voted down", parents=[common])
    feedback_report.add_argument("--json", action="store_true", help="print the report as one JSON object")
    feedback_report.set_defaults(handler=_feedback_report)

    doctor = commands.add_parser(
        "doctor", help="check what the Discord bot needs (token, servers, indexes, models, disk)",
        description="One line per check: ✓ fine, ! worth knowing, ✗ must be fixed (then exit 2). "
        "Offline unless --network; usable as a container health check.")
    doctor.add_argument("--network", action="store_true", help="also log in to Discord with the token")
    doctor.set_defaults(handler=_doctor)

    shelf = commands.add_parser("shelf", help="the configured shelves (corpora and who may read them)")
    shelf_commands = shelf.add_subparsers(metavar="ACTION")
    shelf_list = shelf_commands.add_parser("list", help="each shelf: corpus, index, readers, documents")
    shelf_list.add_argument("--json", action="store_true", help="one JSON object per shelf")
    shelf_list.set_defaults(handler=_shelf_list)

    from bot.shelves.sources import add_source_commands  # hook: web sources (bot/shelves/sources.py)

    add_source_commands(commands, common)
    return parser


class _Version(argparse.Action):
    """--version: the installed package's version, looked up only when asked for."""

    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"verbatim {version('verbatim')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            print("verbatim (version unknown: not installed; pip install -e .)")
        parser.exit()


def _add_source_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--source", action="append", metavar="PATTERN",
                         help="answer only from documents whose path (as citations show it) is PATTERN or matches it "
                         "(fnmatch: 'reports/*.pdf'; a name without '/' matches in any folder); repeatable")


def _bounded(allowed: range) -> Callable[[str], int]:
    """An argparse type: a whole number within `allowed` (a stop of sys.maxsize means no upper bound)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value not in allowed:
            wanted = f"at least {allowed.start}" if allowed.stop == sys.maxsize else f"{allowed.start}..{allowed.stop - 1}"
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {value}")
        return value

    return parse


def _index_build(settings: Settings, arguments: argparse.Namespace) -> int:
    from index.build import build_index

    _check_build_paths(settings)
    if getattr(arguments, "cluster", None) is not None:
        settings = settings.model_copy(update={"build_cluster": arguments.cluster})
    with _progress_bars() as progress:
        summary = build_index(settings, progress, force=arguments.full, allow_drop=arguments.allow_empty)
    _print_build(summary, arguments.json, arguments.verbose)
    return EXIT_OK


def _print_build(summary, as_json: bool, verbose: bool = False) -> None:
    from dataclasses import asdict

    from index.sources.load import printable_name, summarise_skips
    from index.words import counted

    for kept in (item for item in summary.skipped if item.kept):  # still indexed: one note each, never counted
        print(f"verbatim: note: {printable_name(kept.source)}: {kept.describe()}", file=sys.stderr)
    skipped = [item for item in summary.skipped if not item.kept]
    if verbose:
        for item in skipped:
            print(f"verbatim: skipped {printable_name(item.source)}: {item.describe()}", file=sys.stderr)
    elif skipped:
        print(f"verbatim: skipped {counted(len(skipped), 'file')} (--verbose names each): "
              + "; ".join(summarise_skips(skipped)), file=sys.stderr)
    if as_json:
        print(json.dumps({**asdict(summary), "seconds": round(summary.seconds, 3)}), flush=True)
        return
    print(summary.describe(), flush=True)


def _index_show(settings: Settings, arguments: argparse.Namespace) -> int:
    from index.status import show_document

    document = show_document(settings, arguments.source)
    if arguments.json:
        print(json.dumps(document, ensure_ascii=False))
    else:
        sys.stdout.write(document["text"])
    return EXIT_OK


def _index_watch(settings: Settings, arguments: argparse.Namespace) -> int:
    from index.watch import watch

    from index.errors import CorpusMissing

    _check_build_paths(settings)
    if not settings.corpus_dir.is_dir():  # before "watching", so the error is the only line
        raise CorpusMissing(f"corpus directory not found: {settings.corpus_dir} (set --corpus or VERBATIM_CORPUS_DIR)")
    print(f"watching {settings.corpus_dir} into {settings.index_dir} (Ctrl-C to stop)", file=sys.stderr)
    try:
        with _progress_bars() as progress:
            for summary in watch(settings, progress):
                _print_build(summary, arguments.json, arguments.verbose)
    except KeyboardInterrupt:
        print("stopped watching", file=sys.stderr)
    return EXIT_OK


def _index_status(settings: Settings, arguments: argparse.Namespace) -> int:
    from index.status import index_status

    # Which index is in use matters now that each corpus has its own by default.
    status = {"index_dir": str(settings.index_dir.absolute()), **index_status(settings)}
    if arguments.json:
        print(json.dumps(status))
    else:
        for key, value in status.items():
            print(f"{key:>12}: {value}")
    return EXIT_OK


def _ask(settings: Settings, arguments: argparse.Namespace) -> int:
    from bot.answering.answer import Answerer
    from bot.answering.locate import answer_located
    from index.errors import BadQuestion

    answerer = Answerer(settings)
    _hint_slow_path(answerer)
    render = _renderer(arguments.json)
    if arguments.question is not None:
        # Python hands argv bytes that aren't UTF-8 over as lone surrogates, which
        # nothing downstream can encode: recover the bytes and decode them plainly.
        question, replaced = _utf8(arguments.question.encode(sys.getfilesystemencoding(), "surrogateescape"))
        # A BadQuestion, or a --source matching nothing, is then the only line on stderr.
        answer = answer_located(answerer, question, arguments.top, sources=arguments.source)
        if replaced:
            _note_replaced("the question")
        sys.stdout.write(render(answer))
        return EXIT_OK if answer.answered else EXIT_NOT_ANSWERED
    # One question per line: every line gets its answer or a one-line reason on
    # stderr, and the exit code says whether all of them were answered.
    all_answered = True
    first = True
    for question in _stdin_questions():
        if not question.strip():
            continue
        try:
            answer = answer_located(answerer, question, arguments.top, sources=arguments.source)
        except BadQuestion as error:
            print(f"verbatim: {error}", file=sys.stderr)
            all_answered = False
            continue
        all_answered = all_answered and answer.answered
        if arguments.json:
            sys.stdout.write(render(answer))
        else:
            sys.stdout.write(("" if first else "\n") + f"Q: {answer.question}\n" + render(answer))
        first = False
        sys.stdout.flush()
    return EXIT_OK if all_answered else EXIT_NOT_ANSWERED


def _stdin_questions() -> Iterator[str]:
    """Lines of stdin, each decoded on its own so one bad line spoils nothing after it."""
    binary = getattr(sys.stdin, "buffer", None)
    if binary is None:  # an already-decoded text stream
        yield from sys.stdin
        return
    for number, raw in enumerate(binary, start=1):
        text, replaced = _utf8(raw)
        if replaced:
            _note_replaced(f"line {number} of stdin")
        yield text


def _utf8(raw: bytes) -> tuple[str, bool]:
    """The text, and whether bytes that aren't UTF-8 had to be replaced by U+FFFD."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), True


def _note_replaced(what: str) -> None:
    print(f"verbatim: note: {what} is not valid UTF-8; the bad bytes were replaced by \N{REPLACEMENT CHARACTER}",
          file=sys.stderr)


def _chat(settings: Settings, arguments: argparse.Namespace) -> int:
    from bot.answering.answer import Answerer
    from bot.answering.followup import answer_followup
    from index.errors import BadQuestion

    if hasattr(sys.stdin, "reconfigure"):
        # A line that isn't UTF-8 is asked with U+FFFD in place of its bad bytes, not a crash.
        sys.stdin.reconfigure(errors="replace")
    answerer = Answerer(settings)
    _hint_slow_path(answerer)
    if arguments.source:
        answerer.searcher.matching_documents(arguments.source)  # a pattern that matches nothing: say so before asking
    render = _renderer(False)
    print(f"Ask a question about the documents; a short follow-up is read with the one before ({NEW_CONVERSATION} "
          "starts over; empty line or Ctrl-D to quit).", file=sys.stderr)
    previous = None  # the last turn: what a follow-up is read with
    while True:
        try:
            question = input("? ")
        except EOFError:
            return EXIT_OK
        if not question.strip():
            return EXIT_OK
        if question.strip() == NEW_CONVERSATION:
            previous = None
            print("Starting over: the next question is read on its own.", file=sys.stderr)
            continue
        try:
            turn = answer_followup(answerer, question, previous, arguments.top, arguments.source)
        except BadQuestion as error:
            print(f"verbatim: {error}", file=sys.stderr)
            continue
        if turn.read_with:
            print(f"Read with your earlier question: {turn.read_with}")
        print(render(turn.answer))
        previous = turn


def _eval(settings: Settings, arguments: argparse.Namespace) -> int:
    from dataclasses import asdict

    from bot.cli.evaluation import evaluate, load_eval_set, report_lines, select_slice

    eval_set = load_eval_set(arguments.qa_file)
    if arguments.slice:
        eval_set = select_slice(eval_set, arguments.slice)
    distractors = [load_eval_set(path) for path in arguments.distractors]
    _writable_directory(settings.cache_path, "cache directory (cache_dir)")
    with _progress_bars() as progress:
        report = evaluate(eval_set, settings, distractors, arguments.holdout_articles, arguments.limit, progress)
    print(json.dumps(asdict(report)) if arguments.json else "\n".join(report_lines(report)))
    return EXIT_OK


def _hint_slow_path(answerer) -> None:
    if answerer.engine.name == "sentence-transformers" and answerer.settings.embedding_engine != "sentence-transformers":
        reason = answerer.searcher.manifest.engine_note or "it was built without one"
        print(
            f"verbatim: note: this index has no ONNX export ({reason}), so questions are embedded through "
            "sentence-transformers, which starts slower; `verbatim index build` adds the export when the model allows",
            file=sys.stderr,
        )


def _discord(settings: Settings, arguments: argparse.Namespace) -> int:
    from bot.discord.bot import run

    if hasattr(arguments, "shelf"):
        raise UsageError("verbatim: error: the bot serves every configured shelf: run `verbatim discord` without --shelf")
    _writable_directory(settings.feedback_db.parent, "feedback database's directory (feedback_db)")

    run(settings, sync_globally=arguments.sync)
    return EXIT_OK


def _feedback_export(settings: Settings, arguments: argparse.Namespace) -> int:
    from bot.shelves.feedback import export_records
    from index.words import counted

    lines = [json.dumps(record, ensure_ascii=False) + "\n" for record in export_records(settings.feedback_db)]
    if arguments.output:
        try:
            arguments.output.write_text("".join(lines), encoding="utf-8")
        except OSError as error:
            raise UnwritablePath(f"cannot write {arguments.output}: {error.strerror or error}") from None
        print(f"wrote {counted(len(lines), 'feedback record')} to {arguments.output}", file=sys.stderr)
    else:
        sys.stdout.writelines(lines)
    return EXIT_OK


def _feedback_report(settings: Settings, arguments: argparse.Namespace) -> int:
    from bot.shelves.report import feedback_report, report_lines

    report = feedback_report(settings.feedback_db, settings.feedback_report_top)
    print(json.dumps(report, ensure_ascii=False) if arguments.json else "\n".join(report_lines(report)))
    return EXIT_OK


def _doctor(settings: Settings, arguments: argparse.Namespace) -> int:
    import asyncio

    from bot.cli.doctor import login_check, offline_checks

    checks = offline_checks(settings)
    if arguments.network:
        checks += asyncio.run(login_check(settings))
    for check in checks:
        print(check.line(), flush=True)
    return EXIT_ERROR if any(check.failed for check in checks) else EXIT_OK


def _shelf_list(settings: Settings, arguments: argparse.Namespace) -> int:
    from bot.shelves.shelves import configured_shelves, describe, readers_line
    from index.words import counted

    for shelf in configured_shelves(settings):
        described = describe(shelf)
        if arguments.json:
            print(json.dumps(described))
            continue
        documents = "not built" if described["documents"] is None else counted(described["documents"], "document")
        print(f"{shelf.name}: {described['corpus']} -> {described['index']} ({documents}); "
              f"read in {readers_line(shelf)}")
    return EXIT_OK


def _check_build_paths(settings: Settings) -> None:
    # Fail before the model loads, with the setting to change, rather than mid-build.
    _writable_directory(settings.index_dir, "index directory (--index, index_dir)")
    _writable_directory(settings.cache_path, "cache directory (cache_dir)")
    _writable_directory(settings.embedding_cache_path.parent, "embedding cache's directory (embedding_cache)")


def _writable_directory(path: Path, what: str) -> None:
    """Create `path` if needed; UnwritablePath if it can't be created or written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UnwritablePath(f"cannot create the {what} {path}: {error.strerror or error}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UnwritablePath(f"cannot write to the {what} {path}: permission denied")


def _renderer(as_json: bool) -> Callable:
    from bot.cli.render import render_json, render_text

    if as_json:
        return lambda answer: render_json(answer) + "\n"
    hyperlinks = sys.stdout.isatty()  # OSC 8 links only on a terminal, never in a pipe or file
    paint = _terminal_paint()
    return lambda answer: render_text(answer, hyperlinks, paint)


# How a terminal shows what is not quoted text (bot/cli/render.py's roles).
STYLES = {"citation": "dim", "caveat": "italic yellow", "refusal": "bold yellow"}


def _terminal_paint():
    """Styles for a colour terminal through rich; none in a pipe or file, with NO_COLOR or TERM=dumb."""
    from rich.console import Console
    from rich.style import Style

    from bot.cli.render import unpainted

    console = Console()  # decides for stdout: a terminal, NO_COLOR, FORCE_COLOR, TERM
    if not console.is_terminal or console.no_color or console.color_system is None:
        return unpainted
    styles = {role: Style.parse(style) for role, style in STYLES.items()}
    # Style.render wraps the text in escape codes and leaves its characters exactly as they are.
    return lambda role, text: styles[role].render(text, color_system=console.color_system)


@contextmanager
def _progress_bars() -> Iterator[object]:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[done]}"), TimeRemainingColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    ) as bars:
        yield _RichProgress(bars)


# What each stage's progress counts (index/build.py, bot/cli/evaluation.py); bytes are shown as sizes.
PROGRESS_UNITS = {"reading": "bytes", "chunking": "characters", "embedding": "texts", "asking": "questions"}


def progress_done(label: str, completed: float, total: float) -> str:
    """How far a stage is, with its unit: "1.2 kB/535.6 kB", "5,000/20,000 characters"."""
    unit = PROGRESS_UNITS.get(label, "")
    if unit == "bytes":
        from rich.filesize import decimal

        return f"{decimal(int(completed))}/{decimal(int(total))}"
    return f"{int(completed):,}/{int(total):,} {unit}".rstrip()


class _RichProgress:
    def __init__(self, bars) -> None:
        self._bars = bars
        self._task = None
        self._label, self._completed, self._total = "", 0, 0

    def start(self, label: str, total: int) -> None:
        self._label, self._completed, self._total = label, 0, total
        self._task = self._bars.add_task(label, total=total, done=progress_done(label, 0, total))

    def advance(self, count: int) -> None:
        if self._task is not None:
            self._completed += count
            self._bars.update(self._task, completed=self._completed,
                              done=progress_done(self._label, self._completed, self._total))

