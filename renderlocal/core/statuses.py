"""Statuses of jobs and builds, spelled as Render's API spells them.

StrEnums: stored and sent as their text, compared equal to it. A module of
their own so the CLI can know them without the records' imports.
"""

from enum import StrEnum


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def final(self) -> bool:
        return self in FINAL_JOB_STATUSES


class BuildStatus(StrEnum):
    BUILDING = "building"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


JOB_STATUSES = tuple(JobStatus)
FINAL_JOB_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})


class DeployStatus(StrEnum):
    """Render's deploy statuses. A deploy here runs a build that already succeeded, so the build
    ones (``queued``, ``build_in_progress``, ``build_failed``) are Render's only."""

    CREATED = "created"
    QUEUED = "queued"
    BUILD_IN_PROGRESS = "build_in_progress"
    UPDATE_IN_PROGRESS = "update_in_progress"
    LIVE = "live"
    DEACTIVATED = "deactivated"
    BUILD_FAILED = "build_failed"
    UPDATE_FAILED = "update_failed"
    CANCELED = "canceled"
    PRE_DEPLOY_IN_PROGRESS = "pre_deploy_in_progress"
    PRE_DEPLOY_FAILED = "pre_deploy_failed"


class DeployTrigger(StrEnum):
    API = "api"  # the API (the CLI's deploys create)
    BLUEPRINT_SYNC = "blueprint_sync"  # render-local up
    MANUAL = "manual"  # the app
    NEW_COMMIT = "new_commit"  # autoDeploy: a build of changed files succeeded
    SERVICE_RESUMED = "service_resumed"


FINAL_DEPLOY_STATUSES = frozenset({DeployStatus.LIVE, DeployStatus.DEACTIVATED, DeployStatus.PRE_DEPLOY_FAILED,
                                   DeployStatus.UPDATE_FAILED, DeployStatus.BUILD_FAILED, DeployStatus.CANCELED})
ACTIVE_DEPLOY_STATUSES = frozenset({DeployStatus.CREATED, DeployStatus.PRE_DEPLOY_IN_PROGRESS,
                                    DeployStatus.UPDATE_IN_PROGRESS})
