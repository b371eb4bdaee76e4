"""Stage 3, the AL engine: one run = oracle + ledger + schedule + strategy + learner (+ stop), task-free."""
