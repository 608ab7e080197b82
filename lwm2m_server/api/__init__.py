"""The REST API: FastAPI routers under /api/v1, auth dependencies, error translation, JSON values."""

from .routes import API_PREFIX, build_api_router

__all__ = ["API_PREFIX", "build_api_router"]
