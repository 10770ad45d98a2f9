"""The client tests' stack: the processor tests' stack (its own Firestore project, queue and settings per test, the
real task handler dispatched to by the Cloud Tasks emulator), plus the real API entry point served over HTTP by
functions-framework, for the HTTP client to call. `connect(stack)` gives either client of that stack: the tests
that take it run once over HTTP and once direct, since both must behave alike."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

import oncetask
from processor.conftest import (Stack, api_app, cleanup_app, handler_server, make_stack,  # noqa: F401 - fixtures
                                mint_token, storage_host)

__all__ = ["Stack", "mint_token"]

Connect = Callable[..., "oncetask.Client | oncetask.DirectClient"]


@pytest.fixture(scope="session")
def api_server(api_app: Any) -> Iterator[str]:  # noqa: F811 - the imported fixture
    """The real `api` entry point (of whichever app the current stack installed), served over loopback HTTP."""
    server = make_server("127.0.0.1", 0, api_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(params=["http", "direct"])
def connect(request: pytest.FixtureRequest, api_server: str) -> Iterator[Connect]:
    """`connect(stack, **options)`: a client of the stack, over the HTTP API or direct (the test runs in both)."""
    made: list[oncetask.Client] = []

    def make(stack: Stack, **options: Any) -> oncetask.Client | oncetask.DirectClient:
        if request.param == "direct":
            return oncetask.DirectClient(stack.app, **options)
        client = oncetask.Client(api_server, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
