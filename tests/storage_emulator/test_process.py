"""The emulator as a process: its ready line, `--data-dir` across kill -9, a clean stop, injected faults."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys

import pytest
import requests
from google.api_core import exceptions
from google.cloud.storage._media.requests import ResumableUpload

from fixtures.storage import StorageEmulator

CHUNK = 256 * 1024


def test_the_ready_line_names_the_port_it_serves(storage_emulator_factory):
    emulator = storage_emulator_factory()
    assert emulator.process.endpoints["http"].startswith("127.0.0.1:")
    assert requests.get(f"{emulator.host}/storage/v1/b", params={"project": "p"}, timeout=10).status_code == 200


def test_the_console_script_is_installed():
    script = shutil.which("oncetask-storage-emulator", path=os.path.dirname(sys.executable))
    assert script is not None
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "--data-dir" in result.stdout


def test_buckets_objects_and_generations_survive_kill_9(storage_emulator_factory, tmp_path):
    data_dir = str(tmp_path / "storage-data")
    first = storage_emulator_factory(data_dir=data_dir)
    client = first.client()
    bucket = client.create_bucket("persisted")
    bucket.versioning_enabled = True
    bucket.patch()
    old = bucket.blob("doc.txt")
    old.upload_from_string(b"old", content_type="text/plain")
    new = bucket.blob("doc.txt")
    new.metadata = {"k": "v"}
    new.upload_from_string(b"new", content_type="text/plain")
    new.metadata = {"k": "v2"}
    new.patch()
    bucket.blob("gone").upload_from_string(b"x")
    bucket.blob("gone", generation=bucket.get_blob("gone").generation).delete()
    first.process.kill()

    second = storage_emulator_factory(data_dir=data_dir)
    bucket = second.client().get_bucket("persisted")
    assert bucket.versioning_enabled and bucket.metageneration == 2
    live = bucket.get_blob("doc.txt")
    assert (live.generation, live.metageneration, live.metadata) == (new.generation, 2, {"k": "v2"})
    assert live.download_as_bytes() == b"new" and live.md5_hash == new.md5_hash
    assert bucket.blob("doc.txt", generation=old.generation).download_as_bytes() == b"old"
    assert bucket.get_blob("gone") is None
    # Generations keep growing after a restart, and preconditions see the persisted ones.
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("doc.txt").upload_from_string(b"x", if_generation_match=old.generation)
    after = bucket.blob("doc.txt")
    after.upload_from_string(b"newer", if_generation_match=new.generation)
    assert after.generation > new.generation


def test_a_resumable_upload_in_progress_survives_kill_9(storage_emulator_factory, tmp_path):
    data_dir = str(tmp_path / "storage-data")
    first = storage_emulator_factory(data_dir=data_dir)
    first.client().create_bucket("uploads")
    data = os.urandom(2 * CHUNK + 99)
    stream = io.BytesIO(data)
    upload = ResumableUpload(f"{first.host}/upload/storage/v1/b/uploads/o?uploadType=resumable", CHUNK)
    transport = requests.Session()
    upload.initiate(transport, stream, {"name": "big"}, "application/octet-stream")
    upload.transmit_next_chunk(transport)
    first.process.kill()

    # The session URL names the old port; the upload resumes on the new emulator at the same path and query.
    second = storage_emulator_factory(data_dir=data_dir)
    session_url = second.host + upload.resumable_url.split(first.host.removeprefix("http://"), 1)[1]
    upload._resumable_url = session_url  # noqa: SLF001
    upload._invalid = True  # noqa: SLF001
    upload.recover(transport)
    assert upload.bytes_uploaded == CHUNK
    while not upload.finished:
        upload.transmit_next_chunk(transport)
    assert second.client().bucket("uploads").blob("big").download_as_bytes() == data


def test_without_a_data_dir_a_restart_starts_empty(storage_emulator_factory):
    first = storage_emulator_factory()
    first.client().create_bucket("ephemeral")
    first.process.kill()
    second = storage_emulator_factory()
    assert second.client().lookup_bucket("ephemeral") is None


def test_sigterm_stops_it_cleanly(storage_emulator_factory):
    emulator = storage_emulator_factory()
    emulator.process.proc.send_signal(signal.SIGTERM)
    assert emulator.process.proc.wait(10) == 0


def test_a_bad_fault_spec_exits_with_a_message():
    result = subprocess.run([sys.executable, "-m", "oncetask_emulators.storage", "--port", "0", "--fault",
                             "EXPLODE:0.5"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "EXPLODE" in result.stderr


def test_an_injected_unavailable_answers_503_and_changes_nothing(storage_emulator_factory):
    emulator: StorageEmulator = storage_emulator_factory(fault="UNAVAILABLE:1.0")
    with pytest.raises(exceptions.ServiceUnavailable, match="injected fault"):
        emulator.client().create_bucket("never", retry=None)
    assert emulator.stats()["faults"] == {"UNAVAILABLE": 1} and emulator.stats()["buckets"] == 0


def test_the_clients_retries_ride_over_injected_faults(storage_emulator_factory):
    emulator = storage_emulator_factory(fault="503:0.3,DELAY:5ms:0.2", fault_seed=7)
    bucket = emulator.client().create_bucket("flaky")
    for i in range(10):
        bucket.blob(f"o{i}").upload_from_string(b"x", if_generation_match=0)  # conditional: the client retries it
    assert sorted(b.name for b in bucket.list_blobs()) == [f"o{i}" for i in range(10)]
    assert emulator.stats()["faults"]["503"] > 0
