"""Gymnasium adapters over the simulation core."""
