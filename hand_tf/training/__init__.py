"""Training: objectives per stage and the distributed training loop."""
