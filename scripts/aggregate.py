"""Rule aggregate: all runs -> tables and figures."""
from pathlib import Path

from llmal.config.frontier import frontier_enabled
from llmal.report.files import write_aggregate
from llmal.results.aggregate import build_tables
from llmal.workflow import logged

sm = snakemake  # noqa: F821 (injected by Snakemake)
with logged(sm.log[0]):
    tables = Path(sm.output[0]).parent
    figures = Path([o for o in sm.output if "/figures/" in o][0]).parent
    paths = write_aggregate(build_tables([Path(d) for d in sm.params.run_dirs], sm.params.config,
                                         frontier=frontier_enabled(sm.params.config)),
                            tables, figures)
    missing = [o for o in sm.output if not Path(o).exists()]
    if missing:
        raise RuntimeError(f"aggregate did not write {missing}")
    print(f"wrote {len(paths)} files")
