"""Reading our topics: typed events, consumer groups, at-least-once."""
