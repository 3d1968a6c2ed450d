"""Experiment stage: studies that chain training, rollout and evaluation (the paper's comparison of
guided IDM, unguided IDM and VDM; the calibration of the guidance strength)."""
