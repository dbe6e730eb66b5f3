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
