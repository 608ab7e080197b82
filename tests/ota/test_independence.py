"""The ota package stands alone: importing all of it never loads lwm2m_server."""

from __future__ import annotations

import subprocess
import sys


def test_ota_never_imports_the_server() -> None:
    code = ("import pkgutil, importlib, sys, ota\n"
            "for m in pkgutil.iter_modules(ota.__path__): importlib.import_module('ota.' + m.name)\n"
            "print(sorted(n for n in sys.modules if n.startswith('lwm2m_server')))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == "[]"
