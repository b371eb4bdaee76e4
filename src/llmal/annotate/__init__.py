"""Stage 2, annotation: annotator kinds (human, simulated, precomputed, LLM, mixture) write one annotation table (llmal.contracts), and llmal plan prices them."""
