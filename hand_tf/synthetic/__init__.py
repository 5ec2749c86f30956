"""Synthetic training and test images: MANO hands rendered into random scenes
(`dataset` writes them in the FreiHAND layout, `scenes` draws the scene content)."""
