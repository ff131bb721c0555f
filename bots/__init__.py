"""The wiring: web server, CLI, scheduler jobs and the outbox sender. Nothing imports this package."""
