"""The simulator's exception family; client.py turns RequestError into the CoAP answer."""

from __future__ import annotations

__all__ = ["SimError", "RequestError", "ModelError", "StorageError", "TransferError",
           "BAD_REQUEST", "UNAUTHORIZED", "NOT_FOUND", "METHOD_NOT_ALLOWED", "NOT_ACCEPTABLE",
           "UNSUPPORTED_CONTENT_FORMAT", "REQUEST_ENTITY_TOO_LARGE", "INTERNAL_SERVER_ERROR"]

# CoAP response codes as (class, detail); the simulator's objects never import aiocoap.
BAD_REQUEST = (4, 0)
UNAUTHORIZED = (4, 1)
NOT_FOUND = (4, 4)
METHOD_NOT_ALLOWED = (4, 5)
NOT_ACCEPTABLE = (4, 6)
REQUEST_ENTITY_TOO_LARGE = (4, 13)
UNSUPPORTED_CONTENT_FORMAT = (4, 15)
INTERNAL_SERVER_ERROR = (5, 0)


class SimError(Exception):
    """Base of every error the simulator raises."""


class RequestError(SimError):
    """A request the device refuses: carries the CoAP code and a message for the payload."""

    def __init__(self, code: tuple[int, int], message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code[0]}.{code[1]:02d} {message}")


class ModelError(SimError):
    """A Wasm model that does not load, does not follow the model ABI, or traps."""


class StorageError(SimError):
    """The simulated flash (slot files, state records) cannot be read or written."""


class TransferError(SimError):
    """A package download that failed; ``kind`` is 'uri', 'protocol', 'connection', 'size' or 'died'."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(message)
