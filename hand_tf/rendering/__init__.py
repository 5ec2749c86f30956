"""Differentiable hand rendering on tensorflow-graphics (see `renderer.render`)."""
