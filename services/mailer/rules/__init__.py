"""Pure decisions of the mailer: retry routing, validity and suppression. No I/O."""
