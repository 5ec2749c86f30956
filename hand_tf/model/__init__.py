"""The S2HAND network: encoder, geometry / texture-light heads, 2D branch."""
