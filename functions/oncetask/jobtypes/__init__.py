"""The registry of job types: `REGISTRY[name] -> JobType`. Add a job type by importing it and listing it below."""

from __future__ import annotations

from ..stages import JobType
from .builtin import NOOP, TEST_PIPELINE
from .image_thumbnails import IMAGE_THUMBNAILS
from .sheet_import import SHEET_IMPORT

REGISTRY: dict[str, JobType] = {}


def register(job_type: JobType) -> JobType:
    """Add a job type; a second one with the same name is a bug, not an override."""
    if job_type.name in REGISTRY:
        raise ValueError(f"job type {job_type.name!r} is registered twice")
    REGISTRY[job_type.name] = job_type
    return job_type


for _job_type in (NOOP, TEST_PIPELINE, IMAGE_THUMBNAILS, SHEET_IMPORT):
    register(_job_type)
