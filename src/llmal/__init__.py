"""llmal: LLMs in the annotation loop."""
