"""The shared machine room of every long-running command: supervised tasks, logs, metrics,
the allocator and the garbage collector's settings. Depends on nothing above the vocabulary."""
