"""Sampling stage: the EDM sampler over denoiser callables, and discriminator guidance."""
