"""The `verbatim` command line: a thin layer over `build_index` and `Answerer.answer`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from config import Settings, load_settings
from index.errors import BadQuestion, VerbatimError

# Exit codes, as documented in the README.
EXIT_OK = 0
EXIT_NOT_ANSWERED = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    if not hasattr(arguments, "handler"):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        settings = load_settings(
            corpus_dir=getattr(arguments, "corpus", None), index_dir=getattr(arguments, "index", None)
        )
        return arguments.handler(settings, arguments)
    except VerbatimError as error:
        print(f"verbatim: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("verbatim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    # SUPPRESS: a subcommand's unset option must not overwrite one given before it.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--corpus", type=Path, metavar="DIR", help="documents to index (default: settings corpus_dir)")
    common.add_argument("--index", type=Path, metavar="DIR", help="where the index lives (default: settings index_dir)")
    parser = argparse.ArgumentParser(
        prog="verbatim",
        description="Answer questions with verbatim, cited quotes from your documents.",
        epilog="Exit codes: 0 answered/ok, 1 the documents don't answer, 2 error, 130 interrupted.",
        parents=[common],
    )
    commands = parser.add_subparsers(metavar="COMMAND")

    index = commands.add_parser("index", help="build or inspect the index", parents=[common])
    index_commands = index.add_subparsers(metavar="ACTION")
    build = index_commands.add_parser("build", help="index the corpus (skipped when up to date)", parents=[common])
    build.add_argument("--full", action="store_true", help="rebuild even if the index looks up to date")
    build.add_argument("--json", action="store_true", help="print the summary as JSON")
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
    watch.set_defaults(handler=_index_watch)

    ask = commands.add_parser(
        "ask", help="answer a question (or one per line from stdin)", parents=[common],
        description="Answer QUESTION with quotes; with no QUESTION, answer each line of stdin.",
    )
    ask.add_argument("question", nargs="?", help="the question; omit it to read questions from stdin")
    ask.add_argument("--top", type=int, metavar="N", help="at most N quotes (default: settings top_quotes)")
    ask.add_argument("--json", action="store_true", help="one JSON object per answer")
    ask.set_defaults(handler=_ask)

    evaluate = commands.add_parser(
        "eval", help="measure answer quality on SQuAD-style questions", parents=[common],
        description="Build a throwaway index of QA_FILE's articles (plus distractors) and score every answer. "
        "QA_FILE is SQuAD JSON (v1.1/v2.0) or JSONL lines {\"question\": str, \"answers\": [str]} "
        "(then --corpus gives the documents).",
    )
    evaluate.add_argument("qa_file", type=Path, metavar="QA_FILE")
    evaluate.add_argument("--distractors", type=Path, nargs="*", default=[], metavar="FILE",
                          help="SQuAD files whose paragraphs are added to the index, questions ignored")
    evaluate.add_argument("--holdout-articles", type=int, default=0, metavar="K",
                          help="leave the last K articles out and count their questions as out-of-corpus")
    evaluate.add_argument("--limit", type=int, metavar="N", help="ask only the first N questions")
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

    from bot.sources import add_source_commands  # hook: web sources (bot/sources.py)

    add_source_commands(commands, common)

    chat = commands.add_parser("chat", help="ask questions interactively", parents=[common])
    chat.add_argument("--top", type=int, metavar="N", help="at most N quotes")
    chat.set_defaults(handler=_chat)
    return parser


def _index_build(settings: Settings, arguments: argparse.Namespace) -> int:
    from index.build import build_index

    with _progress_bars() as progress:
        summary = build_index(settings, progress, force=arguments.full)
    _print_build(summary, arguments.json)
    return EXIT_OK


def _print_build(summary, as_json: bool) -> None:
    from dataclasses import asdict

    for skipped in summary.skipped:
        print(f"verbatim: skipped {skipped.source}: {skipped.reason}", file=sys.stderr)
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

    print(f"watching {settings.corpus_dir} (Ctrl-C to stop)", file=sys.stderr)
    try:
        with _progress_bars() as progress:
            for summary in watch(settings, progress):
                _print_build(summary, arguments.json)
    except KeyboardInterrupt:
        print("stopped watching", file=sys.stderr)
    return EXIT_OK


def _index_status(settings: Settings, arguments: argparse.Namespace) -> int:
    from index.status import index_status

    status = index_status(settings)
    if arguments.json:
        print(json.dumps(status))
    else:
        for key, value in status.items():
            print(f"{key:>12}: {value}")
    return EXIT_OK


def _ask(settings: Settings, arguments: argparse.Namespace) -> int:
    from bot.answer import Answerer
    from bot.locate import answer_located

    answerer = Answerer(settings)
    _hint_slow_path(answerer)
    render = _renderer(arguments.json)
    if arguments.question is not None:
        answer = answer_located(answerer, arguments.question, arguments.top)
        sys.stdout.write(render(answer))
        return EXIT_OK if answer.answered else EXIT_NOT_ANSWERED
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            sys.stdout.write(render(answer_located(answerer, line, arguments.top)))
        except BadQuestion as error:
            print(f"verbatim: {error}", file=sys.stderr)
        sys.stdout.flush()
    return EXIT_OK


def _chat(settings: Settings, arguments: argparse.Namespace) -> int:
    from bot.answer import Answerer
    from bot.locate import answer_located

    answerer = Answerer(settings)
    _hint_slow_path(answerer)
    render = _renderer(False)
    print("Ask a question about the documents (empty line or Ctrl-D to quit).", file=sys.stderr)
    while True:
        try:
            question = input("? ")
        except EOFError:
            return EXIT_OK
        if not question.strip():
            return EXIT_OK
        try:
            print(render(answer_located(answerer, question, arguments.top)))
        except BadQuestion as error:
            print(f"verbatim: {error}", file=sys.stderr)


def _eval(settings: Settings, arguments: argparse.Namespace) -> int:
    from dataclasses import asdict

    from bot.evaluation import evaluate, load_eval_set, report_lines

    eval_set = load_eval_set(arguments.qa_file)
    distractors = [load_eval_set(path) for path in arguments.distractors]
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
    from bot.discord_bot import run

    run(settings, sync_globally=arguments.sync)
    return EXIT_OK


def _feedback_export(settings: Settings, arguments: argparse.Namespace) -> int:
    from bot.feedback import FeedbackStore

    store = FeedbackStore(settings.feedback_db)
    lines = [json.dumps(record, ensure_ascii=False) + "\n" for record in store.export()]
    store.close()
    if arguments.output:
        arguments.output.write_text("".join(lines), encoding="utf-8")
        print(f"wrote {len(lines)} feedback records to {arguments.output}", file=sys.stderr)
    else:
        sys.stdout.writelines(lines)
    return EXIT_OK


def _renderer(as_json: bool) -> Callable:
    from bot.render import render_json, render_text

    if as_json:
        return lambda answer: render_json(answer) + "\n"
    hyperlinks = sys.stdout.isatty()  # OSC 8 links only on a terminal, never in a pipe or file
    return lambda answer: render_text(answer, hyperlinks)


@contextmanager
def _progress_bars() -> Iterator[object]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    ) as bars:
        yield _RichProgress(bars)


class _RichProgress:
    def __init__(self, bars) -> None:
        self._bars = bars
        self._task = None

    def start(self, label: str, total: int) -> None:
        self._task = self._bars.add_task(label, total=total)

    def advance(self, count: int) -> None:
        if self._task is not None:
            self._bars.advance(self._task, count)


if __name__ == "__main__":
    sys.exit(main())
