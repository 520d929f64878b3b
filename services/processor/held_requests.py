"""How a held email request is kept in the profile's state: Avro single-object bytes, base64."""

from __future__ import annotations

import base64

from services.common.models import EmailRequest
from services.common.serde import email_request_serde


class HeldRequests:
    """The `RequestCodec` of the rules: a request as the text a `Pending` holds, and back."""

    def encode(self, request: EmailRequest) -> str:
        return base64.b64encode(email_request_serde().encode(request.to_record())).decode()

    def decode(self, text: str) -> EmailRequest:
        return EmailRequest.from_record(email_request_serde().decode(base64.b64decode(text)))
