"""The conversation engine: pure functions from (state, message, now) to (new state, effects).

Nothing here does I/O, reads a clock or imports a provider SDK; ``bots/`` interprets the effects.
"""
