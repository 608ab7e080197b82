"""Sub-commands of the lwm2m-server CLI, one module each (see cli.py)."""
