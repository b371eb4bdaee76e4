"""The `llmal` command line. Each subcommand is a (register, run) pair in COMMANDS.

    llmal init data/comments.csv [--out config/mine.yaml] [--llm openai:gpt-4o-mini]
        a first, commented config for a data file (columns and labels guessed and shown)

    llmal plan --configfile config/hakimi2026.yaml [--annotator NAME]
        tokens and dollars per LLM annotator and prompt interface, before anything is sent
    llmal check --configfile config/mine.yaml
        every config and data check without Snakemake, all problems at once
    llmal agreement --configfile config/config.yaml [--results DIR] [--csv]
        every annotator against gold, the dev gold set and the others, from existing annotations
    llmal power --configfile config/config.yaml [--delta 0.01] [--results DIR]
        per comparison, the minimum detectable difference with the seeds run and the seeds a
        difference needs (statsmodels' TTestPower on the seed variance of finished runs)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from llmal.annotate.plan import format_plan, plan_annotators
from llmal.config import (
    PROMPTS_DIR,
    annotation_targets,
    expand_runs,
    lazy_demand,
    load_config,
    reference_annotator,
)
from llmal.config.check import check_config_file, errors, format_problems
from llmal.config.starter import InitError, guess_columns, starter_config, two_question_template
from llmal.report.power import power_markdown
from llmal.report.tables import agreement_markdown
from llmal.results.agreement import task_agreement
from llmal.results.power import ALPHA, DELTA, POWER, power_of_runs
from llmal.tasks.registry import task_of


def _add_plan(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("plan", help="estimate tokens and dollars of the LLM annotators of a config",
                       description="Render every LLM annotator's requests for the items it would "
                       "annotate and estimate tokens and dollars per annotator and prompt "
                       "interface. Sends nothing, needs no API key (runs `llmal check` first: "
                       "errors stop it, warnings are printed).")
    p.add_argument("--configfile", required=True, type=Path, help="an llmal config (YAML)")
    p.add_argument("--annotator", help="plan only this annotator")
    p.add_argument("--compare", default="holistic,two_question",
                   help="comma-separated interfaces priced next to each annotator's own "
                        "(default: holistic,two_question; '' for none; task ner: none)")
    return p


def _run_plan(args: argparse.Namespace) -> int:
    problems = check_config_file(args.configfile)   # a dry run: a missing API key only warns
    if problems:
        print(format_problems(problems), file=sys.stderr)
    if errors(problems):
        return 2
    config = load_config(args.configfile)
    dataset_cfg = config["dataset"]
    cache_dir = Path(dataset_cfg.get("cache_dir") or Path(config.get("cache_dir", ".llmal-cache")) / "datasets")
    task = task_of(config)
    items, split = task.prepare(dataset_cfg, config["labels"], config.get("split") or {}, cache_dir=cache_dir)
    compare = [c.strip() for c in args.compare.split(",") if c.strip()]
    rows = plan_annotators(config, items, split, task, PROMPTS_DIR, targets=annotation_targets(config),
                           annotator=args.annotator, compare=compare)
    unit = task.capabilities.item_noun
    print(f"plan for {args.configfile} (dataset {dataset_cfg['name']}: {len(items):,} {unit})")
    counts = split["split"].value_counts()
    grouped = [n for n, a in config["annotators"].items() if int(a.get("sentences_per_prompt") or 1) > 1]
    print(format_plan(rows, unit=unit, entity_answers=task.capabilities.entity_level, lazy=lazy_demand(config),
                      n_pool=int(counts.get("pool", 0)),
                      n_dev=int(counts.get("dev", 0)), grouped=grouped))
    return 0


def _add_agreement(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("agreement", help="compare the annotators of a config (agreement with gold and each other)",
                       description="Read the annotation tables a run of the pipeline left under "
                       "results/{dataset}/ and print each annotator's agreement with gold (all its "
                       "items and the dev gold set), malformed and failed rates, cost savings "
                       "against the human reference, self-consistency of replicates, Fleiss' and "
                       "pairwise Cohen's kappa. Annotators without a table yet are skipped. "
                       "Pick the winner, then name it as a condition's annotator.")
    p.add_argument("--configfile", required=True, type=Path, help="an llmal config (YAML)")
    p.add_argument("--results", type=Path, help="the dataset's results folder (default results/{dataset name})")
    p.add_argument("--csv", action="store_true", help="print the raw table as CSV instead of Markdown")
    return p


def _run_agreement(args: argparse.Namespace) -> int:
    config = load_config(args.configfile)
    results = args.results or Path("results") / config["dataset"]["name"]
    data = results / "data"
    for name in ("items.parquet", "split.parquet"):
        if not (data / name).is_file():
            raise FileNotFoundError(f"{data / name} does not exist (run `snakemake {data / name}` first)")
    annotations, missing = {}, []
    for name in config["annotators"]:
        path = results / "annotations" / f"{name}.parquet"
        if path.is_file():
            annotations[name] = pd.read_parquet(path)
        else:
            missing.append(name)
    if not annotations:
        raise FileNotFoundError(f"no annotation table of any annotator of {args.configfile} under "
                                f"{results / 'annotations'} (run `snakemake {results}/tables/annotators.csv "
                                f"--configfile {args.configfile}` first)")
    report = task_agreement(task_of(config), annotations, pd.read_parquet(data / "items.parquet"),
                            pd.read_parquet(data / "split.parquet"), config, reference=reference_annotator(config))
    if args.csv:
        print(report.table.to_csv(index=False), end="")
    else:
        print(agreement_markdown(report), end="")
    if missing:
        print(f"\nnot annotated yet (skipped): {', '.join(missing)}", file=sys.stderr)
    return 0


def _add_check(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("check", help="every config and data check, all problems at once",
                       description="Validate a config and its dataset without Snakemake: schema, "
                       "cross references, settings, API-key variables, prices, and the data "
                       "(every record read, labels, splits, classes), precomputed sources, "
                       "models. Prints every problem, each naming the key, file, column or line; "
                       "exit status 1 on any error. `snakemake -n` runs the same check and gives "
                       "the same messages. What this machine lacks (an API key; offline, a model "
                       "not in the Hugging Face cache) is a warning here and under -n, and an "
                       "error when snakemake runs jobs.")
    p.add_argument("--configfile", required=True, type=Path, help="an llmal config (YAML)")
    p.add_argument("--results", type=Path, default=Path("results"),
                   help="results folder (annotation tables there need no API key)")
    return p


def _run_check(args: argparse.Namespace) -> int:
    problems = check_config_file(args.configfile, results=args.results)
    print(format_problems(problems) if problems else f"{args.configfile}: no problems found")
    return 1 if errors(problems) else 0


def _add_init(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("init", help="write a first config for a data file (CSV/TSV/JSONL/Parquet)",
                       description="Read a data file, guess its id, text, gold, annotator and topic "
                       "columns, show the guesses and the label set, and write a complete, commented "
                       "config (human reference, a simulated or recorded LLM annotator, random vs "
                       "entropy, TF-IDF, 3 seeds, a budget the dataset affords) that `llmal check` "
                       "accepts as written. Then: snakemake --cores 4 --configfile OUT.")
    p.add_argument("data", type=Path, help="the data file (.csv, .tsv, .jsonl, .json or .parquet)")
    p.add_argument("--out", type=Path, default=Path("config/mine.yaml"), help="the config to write (default config/mine.yaml)")
    p.add_argument("--llm", metavar="BACKEND:MODEL",
                   help="also add a real LLM annotator, e.g. openai:gpt-4o-mini or openai_batch:gpt-4o-mini, "
                        "with a two-question prompt template to fill in, and print `llmal plan`'s estimate")
    p.add_argument("--force", action="store_true", help="overwrite OUT (and the prompt template) if they exist")
    for col in ("id", "text", "gold", "topic"):
        p.add_argument(f"--{col}", metavar="COLUMN", help=f"the {col} column (instead of the guess)")
    p.add_argument("--annotators", metavar="COL,COL", help="the human annotators' columns, comma-separated")
    return p


def _run_init(args: argparse.Namespace) -> int:
    llm = None
    if args.llm:
        backend, _, model = args.llm.partition(":")
        if backend not in ("openai", "openai_batch") or not model:
            raise InitError(f"--llm {args.llm}: expected openai:MODEL or openai_batch:MODEL")
        llm = (backend, model)
    annotators = [c for c in args.annotators.split(",") if c] if args.annotators is not None else None
    guess = guess_columns(args.data, id=args.id, text=args.text, gold=args.gold, annotators=annotators,
                          topic=args.topic)
    prompt = args.out.with_name(args.out.stem + "_prompt.yaml") if llm and len(guess.labels) == 2 else None
    for path in (args.out, prompt):
        if path is not None and path.exists() and not args.force:
            raise InitError(f"{path} exists; pass --force to overwrite it or --out another file")
    print(f"{args.data}: {guess.n_rows:,} rows; guessed columns (override with --id/--text/--gold/--annotators/--topic):")
    print("\n".join(guess.lines()))
    text = starter_config(guess, config_path=args.out, llm=llm,
                          prompt_path=prompt if prompt is not None else "holistic")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    if prompt is not None:
        positive = next((ln.split(":", 1)[1].split("#")[0].strip().strip("'") for ln in text.splitlines()
                         if ln.startswith("  positive:")), None)
        prompt.write_text(two_question_template(prompt.stem, guess.labels, positive))
        print(f"wrote {prompt}: fill in its two questions (TODO) before sending anything")
    problems = check_config_file(args.out)
    print(format_problems(problems) if problems else f"llmal check: {args.out}: no problems found")
    if errors(problems):
        return 1
    if llm is not None:
        print()
        _run_plan(argparse.Namespace(configfile=args.out, annotator="llm_real", compare=""))
    print(f"next: llmal check --configfile {args.out} && snakemake --cores 4 --configfile {args.out}")
    return 0


def _add_power(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("power", help="minimum detectable differences and seeds needed, from finished runs",
                       description="From the finished runs of a config (all seeds, or a pilot of a "
                       "few), take the seed variance of each comparison's paired differences (the "
                       "comparisons of the significance table: each condition against the "
                       "reference, per encoder, on aggregate.metric) and print the minimum "
                       "detectable difference at --alpha and --power with the seeds used, and the "
                       "seeds needed to detect --delta, also at Holm's first level. Uses "
                       "statsmodels' power class for the paired t-test "
                       "(statsmodels.stats.power.TTestPower).")
    p.add_argument("--configfile", required=True, type=Path, help="an llmal config (YAML)")
    p.add_argument("--delta", type=float, default=DELTA,
                   help=f"the difference in the metric to size the seeds for (default {DELTA})")
    p.add_argument("--alpha", type=float, default=ALPHA, help=f"significance level (default {ALPHA})")
    p.add_argument("--power", type=float, default=POWER, help=f"power (default {POWER})")
    p.add_argument("--results", type=Path, default=Path("results"), help="results folder (default results)")
    p.add_argument("--csv", action="store_true", help="print the raw table as CSV instead of Markdown")
    return p


def _run_power(args: argparse.Namespace) -> int:
    if not (0 < args.alpha < 1 and 0 < args.power < 1 and args.delta > 0):
        raise ValueError(f"--alpha {args.alpha} and --power {args.power} must lie in (0, 1) and "
                         f"--delta {args.delta} must be positive")
    config = load_config(args.configfile)
    runs = list(expand_runs(config))
    base = args.results / config["dataset"]["name"] / "runs"
    done = [base / r.condition / r.encoder / f"seed{r.seed}" for r in runs]
    done = [d for d in done if (d / "run.json").is_file()]
    if not done:
        raise FileNotFoundError(f"no finished run of {args.configfile} under {base} (run the grid, "
                                "or a pilot of a few seeds, first)")
    table = power_of_runs(done, config, alpha=args.alpha, power=args.power, delta=args.delta)
    print(f"{len(done)} of {len(runs)} runs finished under {base}")
    print(table.to_csv(index=False) if args.csv else power_markdown(table), end="")
    return 0


Command = tuple[Callable[[argparse._SubParsersAction], argparse.ArgumentParser],
                Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, Command] = {"init": (_add_init, _run_init), "check": (_add_check, _run_check),
                             "plan": (_add_plan, _run_plan), "agreement": (_add_agreement, _run_agreement),
                             "power": (_add_power, _run_power)}


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
