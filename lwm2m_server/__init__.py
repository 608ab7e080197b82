"""LwM2M 1.1 device-management server for fleets of TinyML microcontrollers."""

__version__ = "0.1.0"
