"""Bank designers (the outer loop): reward models, candidate generation, selection, baselines."""
