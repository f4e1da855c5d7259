"""Policy administration: audited rule changes, reloads and file <-> database sync."""
