"""Stand-ins for the systems around Triggerline: the Adobe pipeline, IMS and an SMTP sink."""
