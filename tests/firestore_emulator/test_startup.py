"""What the emulator imports to start: message classes from its own prebuilt descriptors, which must match the
installed client's (else the two would disagree on the wire), and never the Google client itself (its import
was most of the start time; see bench/firestore_emulator.py)."""

from __future__ import annotations

import base64
import subprocess
import sys

from google.protobuf import descriptor_pb2

from oncetask_emulators.firestore import _descriptors, protos


def normalized(files: list[bytes]) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """Each file by name, its imports sorted (proto-plus lists them in the order the process imported them)."""
    out = {}
    for data in files:
        fd = descriptor_pb2.FileDescriptorProto.FromString(data)
        dependencies = sorted(fd.dependency)
        fd.ClearField("dependency")
        fd.dependency.extend(dependencies)
        out[fd.name] = fd
    return out


def test_the_prebuilt_descriptors_match_the_installed_client():
    committed = normalized([base64.b64decode(encoded) for encoded in _descriptors.FILES])

    assert committed == normalized(protos.client_descriptors()), (
        "google-cloud-firestore changed its messages: run python -m oncetask_emulators.firestore.protos --write"
    )


def test_the_emulator_server_starts_without_importing_the_google_client():
    code = "import sys, oncetask_emulators.firestore.server; print([m for m in sys.modules if 'firestore_v1' in m])"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)

    assert imported.stdout.strip() == "[]"


def test_the_emulator_server_starts_without_the_rules_evaluator_or_the_listen_streams():
    """Both load on first use: with the first rules (--rules or the HTTP endpoint), with the first Listen call."""
    lazy = [f"oncetask_emulators.firestore.{m}" for m in (
        "rules.parser", "rules.evaluator", "rules.symbolic", "rules.enforce", "rules.endpoint",
        "listen.stream", "listen.targets", "listen.feed", "listen.access")]
    code = f"import sys, oncetask_emulators.firestore.server; print(sorted(set({lazy!r}) & set(sys.modules)))"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)

    assert imported.stdout.strip() == "[]"
