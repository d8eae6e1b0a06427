"""The simulation core: pure numpy (plus stdlib). Never imports gymnasium, agents or optimizers."""
