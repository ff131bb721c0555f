"""Channel adapters: one module per provider.

Each adapter verifies a provider's webhook, parses it into Loopline's message types, sends, and parses
delivery status. Adapters import nothing of Loopline's own: the wiring in ``bots/`` connects them.
"""
