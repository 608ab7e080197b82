"""The protocol layer's one exception family; the HTTP side maps each class to one status code."""

from __future__ import annotations

__all__ = ["LwM2MError", "DeviceNotFound", "DeviceOffline", "DeviceTimeout", "DeviceError",
           "InvalidRequest", "Queued", "RegistrationError", "RequestNotFound"]


class LwM2MError(Exception):
    """Base of every error the protocol layer raises; ``message`` says what to do about it."""

    http_status = 500

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class DeviceNotFound(LwM2MError):
    """No registration for that endpoint (HTTP 404)."""

    http_status = 404


class DeviceOffline(LwM2MError):
    """The device is offline (lifetime passed or de-registered) and not in queue mode (HTTP 409)."""

    http_status = 409


class DeviceTimeout(LwM2MError):
    """The device did not answer in time (HTTP 504)."""

    http_status = 504


class DeviceError(LwM2MError):
    """The device answered with an error code (4.xx/5.xx, kept in ``coap_code`` such as "4.04")
    or with a payload that does not decode (HTTP 502)."""

    http_status = 502

    def __init__(self, message: str, coap_code: str | None = None) -> None:
        self.coap_code = coap_code
        super().__init__(message)


class InvalidRequest(LwM2MError):
    """A request the server refuses before sending: bad path, values that do not fit the object
    definition, unknown object for a write (HTTP 400). ``coap_code`` is the answer when the bad
    request came from a device (Send): "4.00", or "4.15" for an unusable content format."""

    http_status = 400

    def __init__(self, message: str, coap_code: str = "4.00") -> None:
        self.coap_code = coap_code
        super().__init__(message)


class Queued(LwM2MError):
    """The device sleeps (queue mode); the request waits under ``request_id`` (HTTP 202)."""

    http_status = 202

    def __init__(self, request_id: str, message: str | None = None) -> None:
        self.request_id = request_id
        super().__init__(message or f"device is sleeping; request {request_id} is queued")


class RegistrationError(LwM2MError):
    """A Register/Update/De-register the server refuses; ``coap_code`` is the answer ("4.00")."""

    def __init__(self, message: str, coap_code: str = "4.00") -> None:
        self.coap_code = coap_code
        super().__init__(message)


class RequestNotFound(DeviceNotFound):
    """No queued request with that id (HTTP 404)."""
