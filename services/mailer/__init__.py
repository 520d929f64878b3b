"""The mailer: email requests from `emails.<campaign>` to SMTP, exactly once per idempotency key."""
