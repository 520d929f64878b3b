"""Mailer tests against the real broker and the in-process SMTP sink."""
