"""Device simulator: LwM2M 1.1 clients that run real Wasm models (``lwm2m-server simulate``).

``SimDevice(DeviceConfig(...))`` is one device (its own UDP socket; objects 0, 1, 2, 3, 4, 5, 9
and the TinyML Model object 33100); ``Fleet(FleetConfig(...))`` runs many with jittered start.
"""

from .device import DeviceConfig, SimDevice
from .errors import ModelError, RequestError, SimError, StorageError, TransferError
from .fleet import Fleet, FleetConfig
from .runtime import Inference, ModelRunner, check_model
from .storage import DeviceStorage, SlotInfo
from .transfer import Faults

__all__ = ["SimDevice", "DeviceConfig", "Fleet", "FleetConfig", "Faults", "ModelRunner",
           "Inference", "check_model", "DeviceStorage", "SlotInfo", "SimError", "RequestError",
           "ModelError", "StorageError", "TransferError"]
