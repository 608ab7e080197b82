"""The data folder: where a server's database, artifacts, SOTA keys and default model live.

Every command resolves the same folder (``Settings.data_dir``: ``--data-dir``,
``LWM2M_DATA_DIR``, or the per-user default) and says on stderr which one it used.
``prepare_server_data`` runs when the server starts: on the first start it creates the SOTA
signing key pair (unless a public key is given) and the default model, so that a simulated
fleet started next to it trusts the key and runs that model (docs/models.md).
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

from .config import DEFAULT_MODEL_FILE, SOTA_PUBLIC_KEY_FILE, SOTA_SIGNING_KEY_FILE, Settings

__all__ = ["open_data_dir", "prepare_server_data", "packaged_default_model",
           "DEFAULT_MODEL_NAME", "DEFAULT_MODEL_VERSION"]

# The example classifier (examples/model/classifier.c) shipped inside the package.
DEFAULT_MODEL_NAME = "classifier"
DEFAULT_MODEL_VERSION = "1.0.0"


def packaged_default_model() -> bytes:
    """The default model's Wasm bytes as shipped with the package."""
    return resources.files("lwm2m_server").joinpath("assets/default_model.wasm").read_bytes()


def open_data_dir(settings: Settings, *, quiet: bool = False) -> Settings:
    """Create the data folder if needed and say (on stderr) which folder and database are used."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(f"lwm2m-server: {settings.describe()}", file=sys.stderr)
        old = Path("lwm2m.db").absolute()
        # Before the data folder, the database was ./lwm2m.db: say how to keep using one.
        if old.is_file() and not settings.db_url.endswith(str(old)):
            print(f"lwm2m-server: note: {old} is not used; pass --db sqlite:///{old} (or set "
                  "LWM2M_DB_URL) to keep using it", file=sys.stderr)
    return settings


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def prepare_server_data(settings: Settings) -> list[str]:
    """First-start set-up of the data folder; returns what it created (empty: nothing new).

    - the SOTA signing key pair (``keys/``), unless ``LWM2M_SOTA_PUBLIC_KEY`` names a key: a
      server that is given a public key never makes its own;
    - the default model (``models/default.wasm``), registered as model artifact
      ``classifier`` 1.0.0 so the model inventory lists it.
    """
    from ota import keys as ota_keys
    from ota.store import ArtifactStore

    from .store.artifacts import ArtifactError, get_artifact_by_sha256, ingest_artifact
    from .store.db import init_db, make_engine

    created: list[str] = []
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    if settings.sota_public_key is None:
        key = ota_keys.generate_private_key("p256")  # what the Zephyr firmware verifies (ES256)
        _write_private(data_dir / SOTA_SIGNING_KEY_FILE, ota_keys.private_key_pem(key))
        (data_dir / SOTA_PUBLIC_KEY_FILE).write_bytes(ota_keys.public_key_pem(key))
        created.append(f"SOTA signing key pair {data_dir / SOTA_SIGNING_KEY_FILE} "
                       f"(public: {data_dir / SOTA_PUBLIC_KEY_FILE})")
    model_path = data_dir / DEFAULT_MODEL_FILE
    if not model_path.is_file():
        model_path.parent.mkdir(parents=True, exist_ok=True)
        model_path.write_bytes(packaged_default_model())
        created.append(f"default model {model_path}")
    wasm = model_path.read_bytes()
    engine = make_engine(settings.db_url)
    try:
        init_db(engine)
        import hashlib

        if get_artifact_by_sha256(engine, hashlib.sha256(wasm).hexdigest()) is None:
            try:
                ingest_artifact(engine, ArtifactStore(settings.artifacts_dir), wasm, kind="model",
                                name=DEFAULT_MODEL_NAME, version=DEFAULT_MODEL_VERSION)
                created.append(f"model artifact {DEFAULT_MODEL_NAME} {DEFAULT_MODEL_VERSION}")
            except ArtifactError as e:  # e.g. the name/version is taken by another file
                print(f"lwm2m-server: default model not registered: {e}", file=sys.stderr)
    finally:
        engine.dispose()
    return created
