"""The failures a channel can report.

The sender only ever reads ``retryable``; the subclass says what else to record.

* ChannelError
  * BadRequest: a webhook that verified but cannot be parsed (answer 400).
  * SendError
    * ProviderUnavailable: timeout, connection error, 5xx or 429; retry with backoff
      (``retry_after`` when the provider said how long to wait).
    * RecipientOptedOut: the provider says this address opted out (Twilio 21610, Telegram blocked).
    * AddressInvalid: the address can never receive messages (Twilio 21211, 21614, 21612).
    * Misconfigured: our credentials or sender are wrong (401/403); stop and alert.
    * Rejected: any other refusal; permanent.
"""

from __future__ import annotations


class ChannelError(Exception):
    """Base of every channel failure."""


class BadRequest(ChannelError):
    """The webhook request was verified but is malformed; the message says which field."""


class SendError(ChannelError):
    retryable = False

    def __init__(self, message: str, *, provider_code: str | None = None) -> None:
        super().__init__(message)
        self.provider_code = provider_code


class ProviderUnavailable(SendError):
    retryable = True

    def __init__(
        self, message: str, *, provider_code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, provider_code=provider_code)
        self.retry_after = retry_after


class RecipientOptedOut(SendError):
    pass


class AddressInvalid(SendError):
    pass


class Misconfigured(SendError):
    pass


class Rejected(SendError):
    pass
