"""The `llmal` command line. Each subcommand is a (register, run) pair in COMMANDS.

    llmal plan --configfile config/hakimi2026.yaml [--annotator NAME]
        tokens and dollars per LLM annotator and prompt interface, before anything is sent
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence


def _add_plan(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("plan", help="estimate tokens and dollars of the LLM annotators of a config",
                       description="Render every LLM annotator's requests for the items it would "
                       "annotate and estimate tokens and dollars per annotator and prompt "
                       "interface. Sends nothing.")
    p.add_argument("--configfile", required=True, type=Path, help="an llmal config (YAML)")
    p.add_argument("--annotator", help="plan only this annotator")
    p.add_argument("--compare", default="holistic,two_question",
                   help="comma-separated interfaces priced next to each annotator's own "
                        "(default: holistic,two_question; '' for none)")
    return p


def _run_plan(args: argparse.Namespace) -> int:
    from .config import PROMPTS_DIR, load_config
    from .data.prepare import prepare_dataset
    from .llm.plan import format_plan, plan_annotators

    config = load_config(args.configfile)
    dataset_cfg = config["dataset"]
    cache_dir = Path(dataset_cfg.get("cache_dir") or Path(config.get("cache_dir", ".llmal-cache")) / "datasets")
    items, split = prepare_dataset(dataset_cfg, config["labels"], config.get("split") or {},
                                   cache_dir=cache_dir)
    compare = [c.strip() for c in args.compare.split(",") if c.strip()]
    rows = plan_annotators(config, items, split, PROMPTS_DIR, annotator=args.annotator,
                           compare=compare)
    print(f"plan for {args.configfile} (dataset {dataset_cfg['name']}: {len(items):,} items)")
    print(format_plan(rows))
    return 0


Command = tuple[Callable[[argparse._SubParsersAction], argparse.ArgumentParser],
                Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, Command] = {"plan": (_add_plan, _run_plan)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmal", description="LLMs in the annotation loop")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (register, run) in COMMANDS.items():
        register(sub).set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ValueError, KeyError, FileNotFoundError) as e:
        print(f"llmal {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
