rule al_run:
    """One AL simulation: condition x encoder x seed. Name its run.json to rerun just it."""
    input:
        unpack(al_inputs),
    output:
        rounds=RUN_DIR + "/rounds.csv",
        queried=RUN_DIR + "/queried.parquet",
        predictions=RUN_DIR + "/predictions.parquet",
        ledger=RUN_DIR + "/ledger.parquet",
        run=RUN_DIR + "/run.json",
    params:
        spec=lambda wc: run_spec(config, wc.condition, wc.encoder),
        dataset=DATASET,
    threads: al_threads
    resources:
        gpu=al_gpus,
    log:
        RUN_DIR + "/log.txt",
    conda:
        "../../envs/torch.yaml"
    script:
        "../../scripts/al_run.py"
