"""End-to-end tests: the real bot against a fake Telegram Bot API server."""
