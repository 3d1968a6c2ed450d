"""Training stage: one loop (resume, EMA, metrics, checkpoints, DDP) for IDM, discriminator and VDM."""
