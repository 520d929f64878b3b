"""Unit tests of the mailer: rules, templates, message hygiene, claims."""
