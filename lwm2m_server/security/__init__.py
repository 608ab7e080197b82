"""Server secrets: device keys sealed at rest (keybox.py)."""
