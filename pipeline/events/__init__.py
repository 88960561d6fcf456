"""Our normalised events and the pure functions that make them."""
