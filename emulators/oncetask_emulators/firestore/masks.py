"""Document masks: return only the requested fields of a document (GetDocument, BatchGet, ListDocuments...)."""

from __future__ import annotations

from google.cloud.firestore_v1.types import common, document

from . import paths
from .query import project

DocumentPb = document.Document.pb()
DocumentMaskPb = common.DocumentMask.pb()


def apply_mask(doc: DocumentPb, mask: DocumentMaskPb | None) -> DocumentPb:
    """`doc` with only the fields named in `mask` (all of them when there is no mask; none for an empty one)."""
    if mask is None:
        return doc
    return project(doc, [paths.parse_field_path(text) for text in mask.field_paths])
