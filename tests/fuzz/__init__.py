"""The bad-input suite: decoders, served subjects and the HTTP API under hostile input."""
