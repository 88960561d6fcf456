"""The error tree of plug-pipeline.

::

    PipelineError
    ├── ConfigError            a bad setting: start-up stops, exit code 2
    ├── Rejected               the request is at fault: 4xx, never retried as is
    │   ├── BadRequest         400  a token given twice, or another request-level fault
    │   ├── Unauthorised       401  missing or unknown tenant token
    │   ├── NotFound           404  no such path
    │   ├── UnknownWebhook     404  no such webhook path
    │   ├── MethodNotAllowed   405  a method the path does not take (Allow)
    │   ├── ExpectationFailed  417  an Expect other than 100-continue
    │   ├── RequestTimeout     408  the body did not arrive within its bound
    │   ├── UriTooLong         414  query string over its limit
    │   ├── RateLimited        429  the tenant's rate limit is reached (Retry-After)
    │   ├── UnsupportedMedia   415  Content-Type is not JSON
    │   ├── TooLarge           413  body over the configured limit
    │   ├── RefusedByKafka     413  Kafka will never take the record (not retriable)
    │   │   └── TooLargeForKafka    over a topic's max.message.bytes
    │   └── Malformed          400  not JSON, or not the shape of that webhook
    ├── NotDurable             503  the event could not be made durable now
    │   ├── BrokerUnavailable       Kafka cannot be reached or refused the record
    │   ├── AckTimeout              Kafka did not acknowledge within the bound
    │   └── Overloaded              the in-flight limit is reached
    ├── UndecodableRecord      a consumed record is not an envelope this library decodes
    ├── ConsumeFailed          a consumer cannot read from Kafka (``retriable``: try later?)
    └── WarehouseError         the loader's warehouse refused a batch (``load``)
        ├── WarehouseUnavailable    cannot be reached now: retried, the batch kept
        └── StaleOffsets            another loader moved a partition on: re-seek, drop the batch

Each class carries the HTTP status it maps to and a short machine-readable
``reason``; ``NotDurable`` errors also say whether a retry may succeed. Only the
HTTP layer turns these into responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.record import Record


class PipelineError(Exception):
    """Root of every error the pipeline raises on purpose."""

    status: int = 500
    reason: str = "internal"


class ConfigError(PipelineError):
    """A setting is missing or invalid."""

    reason = "config"


class Rejected(PipelineError):
    """The request cannot be accepted as sent."""

    status = 400
    reason = "rejected"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(Rejected):
    reason = "bad_request"


class Unauthorised(Rejected):
    status = 401
    reason = "unauthorised"


class NotFound(Rejected):
    status = 404
    reason = "not_found"


class UnknownWebhook(Rejected):
    status = 404
    reason = "unknown_webhook"


class MethodNotAllowed(Rejected):
    status = 405
    reason = "method_not_allowed"

    def __init__(self, detail: str, allow: Sequence[str]) -> None:
        super().__init__(detail)
        self.allow = tuple(allow)


class ExpectationFailed(Rejected):
    status = 417
    reason = "expectation_failed"


class RequestTimeout(Rejected):
    """The client was too slow: the answer closes the connection."""

    status = 408
    reason = "request_timeout"


class UriTooLong(Rejected):
    status = 414
    reason = "uri_too_long"


class RateLimited(Rejected):
    """Over the tenant's rate; ``retry_after_s`` goes into the Retry-After header."""

    status = 429
    reason = "rate_limited"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class UnsupportedMedia(Rejected):
    status = 415
    reason = "unsupported_media_type"


class TooLarge(Rejected):
    status = 413
    reason = "too_large"


class RefusedByKafka(Rejected):
    """Kafka refused a record with an error it marks not retriable: never spooled.

    ``refused`` holds the records it refused (a webhook is two: its event and raw copy).
    The sink has set them aside (dead letter or quarantine file) before this is raised.
    """

    status = 413
    reason = "refused_by_kafka"

    def __init__(self, detail: str, refused: Sequence[Record] = ()) -> None:
        super().__init__(detail)
        self.refused = tuple(refused)


class TooLargeForKafka(RefusedByKafka):
    reason = "too_large_for_kafka"


class Malformed(Rejected):
    """The body is not JSON (``reason`` = ``invalid_json``) or not the webhook's shape."""

    status = 400

    def __init__(self, detail: str, reason: str = "invalid_shape") -> None:
        super().__init__(detail)
        self.reason = reason


class NotDurable(PipelineError):
    """The event could not be made durable; the caller should try again later."""

    status = 503
    reason = "not_durable"
    retriable = True
    retry_after_s = 5

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BrokerUnavailable(NotDurable):
    reason = "broker_unavailable"


class AckTimeout(NotDurable):
    reason = "ack_timeout"


class Overloaded(NotDurable):
    reason = "overloaded"
    retry_after_s = 1


class UndecodableRecord(PipelineError):
    """A record that does not decode as its topic's envelope (consumers, never the ingress).

    ``reason``: ``invalid_envelope``, ``wrong_event_type``, ``unknown_schema_version`` or
    ``unknown_topic``. The consumer fills in where the record sits (``topic``,
    ``partition``, ``offset``) and names it in the message.
    """

    reason = "undecodable"

    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        where = f"{topic}[{partition}]@{offset}: " if topic is not None else ""
        super().__init__(f"{where}{detail}")
        self.reason = reason
        self.detail = detail
        self.topic = topic
        self.partition = partition
        self.offset = offset

    def at(self, topic: str, partition: int, offset: int) -> UndecodableRecord:
        """The same error, located at one record."""
        return UndecodableRecord(
            self.reason, self.detail, topic=topic, partition=partition, offset=offset
        )


class ConsumeFailed(PipelineError):
    """A consumer could not start, read or rebalance; ``retriable`` keeps Kafka's verdict."""

    reason = "consume_failed"

    def __init__(self, detail: str, retriable: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retriable = retriable


class WarehouseError(PipelineError):
    """The warehouse refused what the loader asked of it."""

    reason = "warehouse"
    retriable = False


class WarehouseUnavailable(WarehouseError):
    """The connection failed or the server is down; the same batch is written again later."""

    reason = "warehouse_unavailable"
    retriable = True


class TopicRecreated(WarehouseError):
    """The warehouse has loaded a partition beyond the end Kafka now reports: the topic was
    deleted and created again. Loading on would skip its new records; waiting would wait
    for offsets that may never come. The message names what to do."""

    reason = "topic_recreated"


class StaleOffsets(WarehouseError):
    """A partition's stored offset is not the one this loader expected: it no longer owns
    the partition, or a write it thought failed had committed. Nothing was written."""

    reason = "stale_offsets"
