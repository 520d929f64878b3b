"""The auth service: the one holder of IMS credentials, serving tokens to the other services."""
