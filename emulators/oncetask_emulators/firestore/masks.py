"""Document masks: return only the requested fields of a document (GetDocument, BatchGet, ListDocuments...)."""

from __future__ import annotations

from google.cloud.firestore_v1.types import common, document

from . import paths

DocumentPb = document.Document.pb()
DocumentMaskPb = common.DocumentMask.pb()


def apply_mask(doc: DocumentPb, mask: DocumentMaskPb | None) -> DocumentPb:
    """`doc` with only the fields named in `mask` (all of them when there is no mask; none for an empty one)."""
    if mask is None:
        return doc
    out = DocumentPb(name=doc.name, create_time=doc.create_time, update_time=doc.update_time)
    for text in mask.field_paths:
        path = paths.parse_field_path(text)
        value = paths.get_field(doc.fields, path)
        if value is None:
            continue
        target = out.fields
        for segment in path[:-1]:
            target = target[segment].map_value.fields  # creates the intermediate maps
        target[path[-1]].CopyFrom(value)
    return out
