"""SMTP for the mailer: the wire format, reply parsing, the conversation and the pool.

`conversation` is a state machine over parsed replies and touches no socket; `pool` drives
the sockets of a few connections at once from one thread; `connect` opens them with smtplib.
"""

from services.mailer.smtp.connect import SmtpOptions
from services.mailer.smtp.envelope import Envelope
from services.mailer.smtp.pool import Handed, SmtpPool

__all__ = ["Envelope", "Handed", "SmtpOptions", "SmtpPool"]
