"""The task seam: one package per annotation task behind one protocol (tasks.base), found by name
through tasks.registry, the only reader of a config's `task` key."""
