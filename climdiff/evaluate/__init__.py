"""Evaluation stage: one module per metric family, each a function on xarray objects."""
