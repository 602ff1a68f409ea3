"""Webhooks: events delivered to receivers' URLs, signed, in order, retried for a day."""
