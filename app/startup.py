"""Why an instance cannot start: raised by start-up steps wherever they live, reported by
`app.main.start_failure` as one line for the operator."""

from __future__ import annotations


class StartupError(RuntimeError):
    """The instance cannot serve; the message is one line for the operator."""
