"""Embedded ``local`` providers: real, stateful services on disk that need no account."""
