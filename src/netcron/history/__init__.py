"""What changed: normalized comparison, masked secrets, parsed output, deduplicated storage."""
