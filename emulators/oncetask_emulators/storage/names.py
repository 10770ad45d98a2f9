"""Bucket and object naming rules (https://cloud.google.com/storage/docs/buckets#naming, .../objects#naming).

Pure checks: each raises a 400 StorageError naming the rule the name breaks, so bad input never reaches the store.
"""

from __future__ import annotations

import ipaddress
import re

from . import errors

_BUCKET_CHARS = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")
MAX_OBJECT_NAME_BYTES = 1024


def check_bucket_name(name: object) -> str:
    """The name, if Cloud Storage would accept it for a new bucket; else a 400 'Invalid bucket name'."""
    if not isinstance(name, str) or not name:
        raise errors.required("bucket name")

    def bad(why: str) -> errors.StorageError:
        return errors.invalid(f"Invalid bucket name: '{name}' ({why})")

    if not _BUCKET_CHARS.fullmatch(name):
        raise bad("only lowercase letters, digits, '-', '_' and '.', beginning and ending with a letter or digit")
    if "." in name:
        if len(name) > 222 or any(not 1 <= len(part) <= 63 for part in name.split(".")):
            raise bad("a dotted name has at most 222 characters and 63 between dots")
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            pass
        else:
            raise bad("a bucket name cannot be an IP address")
    elif not 3 <= len(name) <= 63:
        raise bad("between 3 and 63 characters")
    if name.startswith("goog") or "google" in name:
        raise bad("names cannot begin with 'goog' or contain 'google'")
    return name


def check_object_name(name: object) -> str:
    """The name, if Cloud Storage would accept it for an object; else a 400 naming the rule."""
    if not isinstance(name, str) or name == "":
        raise errors.required("object name")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_OBJECT_NAME_BYTES:
        raise errors.invalid(f"The maximum object name length is {MAX_OBJECT_NAME_BYTES} bytes in UTF-8, "
                             f"but got a name of {len(name.encode('utf-8', 'surrogatepass'))} bytes.")
    if "\r" in name or "\n" in name:
        raise errors.invalid("Object names cannot contain carriage return or line feed characters.")
    if name in (".", ".."):
        raise errors.invalid(f"The object name '{name}' is not allowed.")
    if name.startswith(".well-known/acme-challenge/"):
        raise errors.invalid("Object names cannot begin with '.well-known/acme-challenge/'.")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.invalid("Object names must be valid UTF-8.") from None
    return name
