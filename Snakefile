# llmal: conditions x encoders x seeds -> annotation, AL simulation, training, evaluation,
# tables, figures and an HTML report. See README.md and workflow/schemas/ for every config key.
import os
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("8.0")

SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
# rule scripts run in processes of their own (in conda environments too): they import llmal from src/
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p))
from llmal.config.check import plan_check  # noqa: E402
from llmal.config import ConfigError, expand_runs  # noqa: E402

# the default grid, unless --configfile names another: a named config replaces it whole
# (Snakemake would otherwise merge the two, leaking default conditions into every other grid)
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"

# the one check of `llmal check` (llmal.config.check.check_config): every config and data problem at
# once, naming the key, file, column or line; it fills in the schema's defaults. The data summary
# is cached by file hash, so planning again reads only the hash. What this machine lacks (an API
# key, a model offline) is a warning under -n and an error when a run starts (not again in each
# job's own process, e.g. on a SLURM node: a job that needs the key or model names it itself).
CONFIG_WHERE = ", ".join(map(str, workflow.overwrite_configfiles)) or "config/config.yaml"
PLAN_ONLY = bool(getattr(workflow.output_settings, "dryrun", False)) or not workflow.is_main_process
try:
    for warning in plan_check(config, where=CONFIG_WHERE, dry_run=PLAN_ONLY):
        print(warning, file=sys.stderr)
except ConfigError as e:
    raise WorkflowError(str(e)) from None
# plan_check filled the defaults (not into a condition's `al` overrides)
validate(config, "workflow/schemas/config.schema.yaml", set_default=False)

# Snakemake's own report (snakemake --report report.zip): this description, then the results the
# rules mark with report() (workflow/rules/aggregate.smk, REPORTED), each with its caption
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/annotate.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/al.smk"
include: "workflow/rules/agreement.smk"
include: "workflow/rules/aggregate.smk"


rule all:
    input:
        # an agreement-only study (no conditions, so no runs) asks for the agreement tables only
        AGGREGATE_OUTPUTS if RUNS else [],
        AGREEMENT_OUTPUTS,
        f"{RESULTS}/report.html" if RUNS else [],
    default_target: True
localrules:
    all,
