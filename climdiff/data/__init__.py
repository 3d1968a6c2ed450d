"""Data stage: solvers and importers that write training stores, and training access to them."""
