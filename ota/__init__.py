"""OTA toolchain: firmware images, Wasm model checks, ELF section rewrite, signed SOTA packages.

A package of its own: it never imports ``lwm2m_server``, so build pipelines can use it alone.

Modules: ``keys`` (Ed25519 / P-256), ``version`` (MAJOR.MINOR.PATCH), ``wasm`` (model checks),
``sota`` (package build and verify, docs/sota-format.md), ``selftest`` (run a model's self-test),
``elf`` (model-section rewrite), ``mcuboot`` (images as imgtool writes them), ``delta``
(detools patches), ``store`` (content-addressed files), ``inspection`` (what a file is and
whether it verifies), ``modelbuild`` (trained Python models to model Wasm modules,
docs/models.md). Every error is an ``ota.errors.OtaError``.
"""

__version__ = "0.1.0"
