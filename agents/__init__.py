"""Targeting agents (the inner loop): LinUCB, bootstrapped DQN, baselines, SB3 adapter."""
