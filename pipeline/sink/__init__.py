"""Where records go: the Kafka producer, and an in-memory sink for unit tests."""
