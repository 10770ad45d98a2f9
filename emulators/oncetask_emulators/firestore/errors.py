"""Errors the Firestore emulator raises, each with the gRPC code production answers with."""

from __future__ import annotations

import grpc


class EmulatorError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArgument(EmulatorError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(EmulatorError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(EmulatorError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(EmulatorError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(EmulatorError):
    code = grpc.StatusCode.ABORTED


class Unimplemented(EmulatorError):
    code = grpc.StatusCode.UNIMPLEMENTED


class PermissionDenied(EmulatorError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(EmulatorError):
    code = grpc.StatusCode.UNAUTHENTICATED
