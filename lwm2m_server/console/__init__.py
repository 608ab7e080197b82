"""The operator web console: server-rendered pages (Jinja2) for devices, deployments and
artifacts, served by the same FastAPI app as the REST API under ``/console``.

``mount_console(app)`` adds the pages, the static files and the console's error pages to an app
(``lwm2m_server.app.create_app`` calls it).
"""

from .views import mount_console, router

__all__ = ["mount_console", "router"]
