"""Document masks: return only the requested fields of a document (GetDocument, BatchGet, ListDocuments...)."""

from __future__ import annotations

from . import paths
from .protos import DocumentMaskPb, DocumentPb
from .query import project


def apply_mask(doc: DocumentPb, mask: DocumentMaskPb | None) -> DocumentPb:
    """`doc` with only the fields named in `mask` (all of them when there is no mask; none for an empty one)."""
    if mask is None:
        return doc
    return project(doc, [paths.parse_field_path(text) for text in mask.field_paths])
