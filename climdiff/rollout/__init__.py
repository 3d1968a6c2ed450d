"""Rollout stage: the autoregressive engine, calendars, and the resumable Zarr writer."""
