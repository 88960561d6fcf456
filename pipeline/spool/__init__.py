"""A local append-only spool for records Kafka could not acknowledge in time."""

from pipeline.spool.spool import Spool, SpoolFull, SpoolStats, SpoolUnavailable

__all__ = ["Spool", "SpoolFull", "SpoolStats", "SpoolUnavailable"]
