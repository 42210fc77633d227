"""ChatSphere privacy-data service."""
