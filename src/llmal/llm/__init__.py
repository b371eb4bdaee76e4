"""LLM annotation: prompts, batch-JSONL requests, executors, response cache, parsing and cost."""
