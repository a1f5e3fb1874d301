"""Outbound webhook deliveries: signing, the safe HTTP client, and (elsewhere) their bookkeeping."""
