"""Pure decisions of the mailer: a request's verdict, a transaction's end, retry routing,
validity and suppression. No I/O."""
