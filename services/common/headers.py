"""Kafka header names: the one place every header our services write or read is named.

A header name is a contract between the service that writes it and whoever reads it later (the
next stage, a re-drive, an operator's `kcat`), so it is spelt here once and nowhere else. Each
constant is the header's name in upper snake case. Values are UTF-8 text; times are epoch
milliseconds.
"""

from __future__ import annotations

# Trace: written by the fetcher on every `triggers.raw` record, so the record can be traced back
# upstream and counted by its envelope.
UPSTREAM_TOPIC = "upstream-topic"  # the upstream topic the envelope was streamed from
UPSTREAM_PARTITION = "upstream-partition"  # its upstream partition
UPSTREAM_OFFSET = "upstream-offset"  # its upstream offset
MESSAGE_ID = "message-id"  # the envelope's messageId; `triggerline outcomes` matches by it

# Processor stages: on records of the repartition topic.
X_SOURCE = "x-source"  # where a re-keyed record was read: `topic:partition:offset`
# Marks a release tick: not a trigger, a request to release the profile's due holds.
X_TRIGGERLINE_RELEASE = "x-triggerline-release"

# Our own headers all start with this; a retry or a dead letter of the mailer keeps only the
# others of the record it copies, and writes its own afresh.
X_PREFIX = "x-"

# Dead letters (services/common/dlq.py): where the original came from, and why it failed.
X_ORIGINAL_TOPIC = "x-original-topic"  # `pipeline:<topic>` when it never was a Kafka record
X_ORIGINAL_PARTITION = "x-original-partition"  # -1 when unknown
X_ORIGINAL_OFFSET = "x-original-offset"  # -1 when unknown
X_ORIGINAL_TIMESTAMP = "x-original-timestamp"  # the original record's timestamp, when known
X_SERVICE = "x-service"  # the service that gave up on it
X_ERROR_PREFIX = "x-error"  # every header below that names the failure starts with this
X_ERROR_REASON = "x-error-reason"  # short reason code; `triggerline replay redrive --reason`
X_ERROR_CLASS = "x-error-class"  # the exception's class
X_ERROR_MESSAGE = "x-error-message"  # the exception's message, cut to 1000 characters
X_FAILED_AT = "x-failed-at"  # when it was dead-lettered; re-drive filters select on it
X_ATTEMPT = "x-attempt"  # attempts made so far (dead letters and retry records)

# Dead letters cut to fit (services/common/dlq.py `bounded_value`): what the full value was.
X_TRUNCATED = "x-truncated"  # `true` when the value is only the original's start
X_ORIGINAL_SIZE = "x-original-size"  # the original value's length in bytes
X_ORIGINAL_SHA256 = "x-original-sha256"  # the original value's SHA-256, hex

# Retries (the mailer's `emails.retry.<delay>` topics); they also carry the origin headers above.
X_NOT_BEFORE = "x-not-before"  # the record is not consumed before this time
X_FIRST_FAILURE_TS = "x-first-failure-ts"  # when the first attempt failed, kept across hops

# Re-drive (`triggerline replay redrive`): dead letters sent back to their original topic.
X_REDRIVE_COUNT = "x-redrive-count"  # how many times this record has been re-driven
