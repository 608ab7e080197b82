"""The rollout layer's one exception family; the REST side maps ``http_status``, the CLI prints it."""

from __future__ import annotations

__all__ = ["RolloutError", "DeploymentNotFound", "WebhookNotFound", "InvalidDeployment", "DeploymentConflict",
           "ArtifactUnavailable", "ArtifactInUse"]


class RolloutError(ValueError):
    """Base of the rollout errors; ``message`` says what is wrong and what to do (a ValueError,
    so command-line tools report it like any other bad input)."""

    http_status = 400

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class DeploymentNotFound(RolloutError):
    http_status = 404


class WebhookNotFound(RolloutError):
    http_status = 404


class InvalidDeployment(RolloutError):
    """A deployment request that cannot be carried out (bad stages, no targets, bad artifact)."""

    http_status = 422


class DeploymentConflict(RolloutError):
    """An operation the deployment's state does not allow (resume a cancelled deployment)."""

    http_status = 409


class ArtifactUnavailable(RolloutError):
    """The artifact row or its bytes are missing."""

    http_status = 404


class ArtifactInUse(RolloutError):
    """An artifact that a deployment still needs (running, paused, or with devices updating)
    cannot be deleted; ``deployments`` are their ids."""

    http_status = 409

    def __init__(self, message: str, deployments: list[int]) -> None:
        super().__init__(message)
        self.deployments = deployments
