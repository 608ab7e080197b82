"""OTA toolchain: firmware images, Wasm model checks, ELF section rewrite, signed SOTA packages.

A package of its own: it never imports ``lwm2m_server``, so build pipelines can use it alone.
"""

__version__ = "0.1.0"
