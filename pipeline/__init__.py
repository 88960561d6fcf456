"""plug-pipeline: Plug's seven webhooks in, typed events on Kafka out."""

__version__ = "0.1.0"
