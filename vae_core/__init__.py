"""vae_core: train, load, decode and evaluate β-VAEs over sentences (no UI code here)."""

__version__ = "0.1.0"
