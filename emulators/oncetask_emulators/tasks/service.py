"""google.cloud.tasks.v2.CloudTasks over gRPC: parse, call the store or the dispatcher, map errors to statuses."""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc
from google.cloud.tasks_v2.types import cloudtasks
from google.cloud.tasks_v2.types import queue as queue_types
from google.cloud.tasks_v2.types import task as task_types
from google.protobuf import empty_pb2

from .dispatcher import Dispatcher
from .errors import ApiError
from .store import State, Store

log = logging.getLogger("oncetask-tasks-emulator.service")
SERVICE = "google.cloud.tasks.v2.CloudTasks"
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


def generic_handler(service: CloudTasksService) -> grpc.GenericRpcHandler:
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            _guarded(getattr(service, name)),
            request_deserializer=request_type.pb().FromString,
            response_serializer=response_type.SerializeToString,
        )
        for name, (request_type, response_type) in METHODS.items()
    }
    return grpc.method_handlers_generic_handler(SERVICE, handlers)
