"""google.cloud.tasks.v2.CloudTasks over gRPC (and v2beta3's queue reads, for Queue.stats): parse, call the store
or the dispatcher, map errors to statuses."""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc
from google.cloud.tasks_v2.types import cloudtasks
from google.cloud.tasks_v2.types import queue as queue_types
from google.cloud.tasks_v2.types import task as task_types
from google.cloud.tasks_v2beta3.types import cloudtasks as beta_cloudtasks
from google.protobuf import empty_pb2

from . import v2beta3
from .dispatcher import Dispatcher
from .errors import ApiError
from .store import State, Store

log = logging.getLogger("oncetask-tasks-emulator.service")
SERVICE = "google.cloud.tasks.v2.CloudTasks"
BETA_SERVICE = "google.cloud.tasks.v2beta3.CloudTasks"
Queue = queue_types.Queue.pb()
Task = task_types.Task.pb()


class CloudTasksService:
    def __init__(self, store: Store, dispatcher: Dispatcher):
        self.store = store
        self.dispatcher = dispatcher

    def CreateQueue(self, request, context):
        return self.store.create_queue(request.parent, request.queue)

    def GetQueue(self, request, context):
        return self.store.get_queue(request.name)

    def ListQueues(self, request, context):
        queues, token = self.store.list_queues(request.parent, request.page_size, request.page_token,
                                               request.filter)
        return cloudtasks.ListQueuesResponse.pb()(queues=queues, next_page_token=token)

    def UpdateQueue(self, request, context):
        return self.store.update_queue(request.queue, request.update_mask)

    def DeleteQueue(self, request, context):
        self.store.delete_queue(request.name)
        return empty_pb2.Empty()

    def PauseQueue(self, request, context):
        return self.store.set_state(request.name, State.PAUSED)

    def ResumeQueue(self, request, context):
        return self.store.set_state(request.name, State.RUNNING)

    def PurgeQueue(self, request, context):
        return self.store.purge_queue(request.name)

    def CreateTask(self, request, context):
        return self.store.create_task(request.parent, request.task, request.response_view)

    def GetTask(self, request, context):
        return self.store.get_task(request.name, request.response_view)

    def ListTasks(self, request, context):
        tasks, token = self.store.list_tasks(request.parent, request.response_view, request.page_size,
                                             request.page_token)
        return cloudtasks.ListTasksResponse.pb()(tasks=tasks, next_page_token=token)

    def DeleteTask(self, request, context):
        self.store.delete_task(request.name)
        return empty_pb2.Empty()

    def RunTask(self, request, context):
        # The store's lock is held across "still pending and not in flight?" and the start of the attempt.
        with self.dispatcher.cond:
            record = self.store.task_for_run(request.name)
            self.dispatcher.run_now(record)
            return self.store.task_view(record.pb, request.response_view)


class CloudTasksBetaService:
    """v2beta3 GetQueue and ListQueues over the same queues: the only API version with Queue.stats."""

    def __init__(self, store: Store, dispatcher: Dispatcher):
        self.store = store
        self.dispatcher = dispatcher

    def GetQueue(self, request, context):
        paths = v2beta3.read_paths(request.read_mask)
        # One hold of the lock: the queue and its figures are of the same instant.
        with self.dispatcher.cond:
            queue = self.store.get_queue(request.name)
            stats = self.dispatcher.queue_figures(queue.name) if v2beta3.wants_stats(paths) else None
        return v2beta3.queue_view(queue, stats, paths, self.store.tombstone_seconds)

    def ListQueues(self, request, context):
        paths = v2beta3.read_paths(request.read_mask)
        with self.dispatcher.cond:
            queues, token = self.store.list_queues(request.parent, request.page_size, request.page_token,
                                                   request.filter)
            stats = [self.dispatcher.queue_figures(q.name) if v2beta3.wants_stats(paths) else None for q in queues]
        views = [v2beta3.queue_view(q, s, paths, self.store.tombstone_seconds) for q, s in zip(queues, stats)]
        return beta_cloudtasks.ListQueuesResponse.pb()(queues=views, next_page_token=token)


# method -> (request proto-plus type, response raw class)
METHODS: dict[str, tuple[type, type]] = {
    "CreateQueue": (cloudtasks.CreateQueueRequest, Queue),
    "GetQueue": (cloudtasks.GetQueueRequest, Queue),
    "ListQueues": (cloudtasks.ListQueuesRequest, cloudtasks.ListQueuesResponse.pb()),
    "UpdateQueue": (cloudtasks.UpdateQueueRequest, Queue),
    "DeleteQueue": (cloudtasks.DeleteQueueRequest, empty_pb2.Empty),
    "PauseQueue": (cloudtasks.PauseQueueRequest, Queue),
    "ResumeQueue": (cloudtasks.ResumeQueueRequest, Queue),
    "PurgeQueue": (cloudtasks.PurgeQueueRequest, Queue),
    "CreateTask": (cloudtasks.CreateTaskRequest, Task),
    "GetTask": (cloudtasks.GetTaskRequest, Task),
    "ListTasks": (cloudtasks.ListTasksRequest, cloudtasks.ListTasksResponse.pb()),
    "DeleteTask": (cloudtasks.DeleteTaskRequest, empty_pb2.Empty),
    "RunTask": (cloudtasks.RunTaskRequest, Task),
}


BETA_METHODS: dict[str, tuple[type, type]] = {
    "GetQueue": (beta_cloudtasks.GetQueueRequest, v2beta3.BetaQueue),
    "ListQueues": (beta_cloudtasks.ListQueuesRequest, beta_cloudtasks.ListQueuesResponse.pb()),
}
# The rest of v2beta3 answers UNIMPLEMENTED with a message saying where to go, not gRPC's bare "Method not found".
BETA_ELSEWHERE = ("CreateQueue", "UpdateQueue", "DeleteQueue", "PurgeQueue", "PauseQueue", "ResumeQueue",
                  "UploadQueueYaml", "GetIamPolicy", "SetIamPolicy", "TestIamPermissions", "CreateTask", "GetTask",
                  "ListTasks", "DeleteTask", "RunTask", "BufferTask")


def _guarded(method: Callable) -> Callable:
    """Map ApiError to its status; any other exception is INTERNAL with its text, never a dead server."""

    def call(request, context: grpc.ServicerContext):
        try:
            return method(request, context)
        except ApiError as error:
            context.abort(error.code, error.message)
        except Exception as error:  # noqa: BLE001
            log.exception("%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"emulator error: {type(error).__name__}: {error}")

    return call


def _handlers(service: object, methods: dict[str, tuple[type, type]]) -> dict[str, grpc.RpcMethodHandler]:
    return {
        name: grpc.unary_unary_rpc_method_handler(
            _guarded(getattr(service, name)),
            request_deserializer=request_type.pb().FromString,
            response_serializer=response_type.SerializeToString,
        )
        for name, (request_type, response_type) in methods.items()
    }


def _elsewhere(name: str) -> grpc.RpcMethodHandler:
    def call(request: bytes, context: grpc.ServicerContext):
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      f"this emulator serves v2beta3 GetQueue and ListQueues only (for Queue.stats); call {name} "
                      f"through google.cloud.tasks.v2")

    return grpc.unary_unary_rpc_method_handler(call)  # no deserializer: the request is never read


def generic_handlers(store: Store, dispatcher: Dispatcher) -> tuple[grpc.GenericRpcHandler, ...]:
    """v2 in full, and v2beta3's queue reads."""
    beta = _handlers(CloudTasksBetaService(store, dispatcher), BETA_METHODS)
    beta.update({name: _elsewhere(name) for name in BETA_ELSEWHERE})
    return (grpc.method_handlers_generic_handler(SERVICE, _handlers(CloudTasksService(store, dispatcher), METHODS)),
            grpc.method_handlers_generic_handler(BETA_SERVICE, beta))
