"""Several server processes, on one host or several, serving one fleet on one PostgreSQL.

See docs/scale.md. ``Cluster`` (node.py) joins a process to the others: ``channel.py`` carries
messages between processes (LISTEN/NOTIFY), ``replica.py`` keeps every process's view of the
fleet current, ``forward.py`` runs a device request in the process that owns the device.
"""
