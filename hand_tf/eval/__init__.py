"""FreiHAND-protocol metrics (`metrics`) and their report (`report`)."""
