"""Business-system sources: read records, write statuses back."""
