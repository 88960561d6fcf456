"""An erasure request (``ErasureRequested``): what ``forget`` publishes, every consumer applies.

Its record is keyed ``tenant:subject`` on a compacted topic, so a second request for one
customer replaces the first. It carries the phone itself, because the consumers it
tells (LGPD art. 18 §6) hold phones, not our pseudonyms; the topic's retention bounds
how long (docs/privacy.md). Every store records the request by ``subject`` only.

``token`` is what the customer's phone becomes in every row: drawn at random for the
request, so it links the customer's rows to each other (the KPI views count the same
distinct customers and recontacts as before) and to nobody.
"""

from __future__ import annotations

import secrets
import time
import uuid

from pipeline.events.models import ErasureRequested
from pipeline.privacy.subject import Pseudonyms, requested_phone

TOKEN_PREFIX = "erased:"


def request(
    pseudonyms: Pseudonyms,
    tenant: str,
    phone: str,
    reason: str | None = None,
    suppress: bool = False,
    now_ms: int | None = None,
) -> ErasureRequested:
    normal = requested_phone(phone)
    return ErasureRequested(
        request_id=uuid.uuid4().hex,
        subject=pseudonyms.of(tenant, normal),
        phone=normal,
        token=TOKEN_PREFIX + secrets.token_hex(8),
        reason=reason,
        requested_at=int(time.time() * 1000) if now_ms is None else now_ms,
        suppress=suppress,
    )
