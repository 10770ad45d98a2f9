"""The google.firestore.v1.Firestore gRPC service: one method per RPC over the Store, locks and transactions.

Handlers work on raw protobuf messages and raise `errors.EmulatorError`; `_guard` turns those (and any
unexpected exception, as INTERNAL) into a gRPC status in one place, so no request can crash the server.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import string
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import grpc

from . import explain, paths, query
from .aggregation import aggregated_fields, validate_aggregation
from .errors import Aborted, EmulatorError, InvalidArgument, NotFound, Unimplemented
from .listen import DEFAULT_CAPACITY, Listens, encode_response
from .locks import LockTimeout, Mode, Owner, Wounded
from .masks import apply_mask
from .protos import Empty, common, document, firestore, write
from .rules.auth import CALL_METADATA
from .rules.gate import RulesGate
from .stats import CallCounters
from .store import Database, Store, to_timestamp, write_target
from .transactions import Transaction, Transactions

DocumentPb = document.Document.pb()
WritePb = write.Write.pb()
TransactionOptionsPb = common.TransactionOptions.pb()

CONTENTION = "Too much contention on these documents. Please try again."
_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass
class ReadView:
    """How one read request sees the database: at a snapshot, or (read-write transaction) latest under locks."""

    db: Database
    at: int | None  # snapshot time in microseconds; None = latest, read under the transaction's locks
    txn: Transaction | None = None  # the read-write transaction whose locks the read takes
    new_transaction: bytes = b""  # ID to report when the request began a transaction itself


class FirestoreService:
    def __init__(self, store: Store, transactions: Transactions, counters: CallCounters, lock_timeout: float,
                 rules: RulesGate | None = None, listen_buffer: int = DEFAULT_CAPACITY,
                 listen_streams: int = 1000):
        self.store = store
        self.transactions = transactions
        self.counters = counters
        self.lock_timeout = lock_timeout
        self.rules = rules or RulesGate()  # without rules loaded it allows everything
        self.listens = Listens(store, counters, listen_buffer, listen_streams, rules=self.rules)

    # -- documents ---------------------------------------------------------------------------------------

    def get_document(self, request) -> DocumentPb:
        db = self._document_database(request.name)
        view = self._read_view(db, request)
        self._lock_for_read(view, [request.name])
        doc = db.get(request.name, view.at)
        self.rules.authorize_reads(db, [request.name], lambda _: doc)
        if doc is None:
            raise NotFound(f'Document "{request.name}" not found')
        return apply_mask(doc, _mask(request))

    def list_documents(self, request):
        db = self._parent_database(request.parent)
        if not request.collection_id:
            raise InvalidArgument("collection_id is required")
        if request.order_by not in ("", "__name__", "__name__ asc"):
            raise InvalidArgument(f"order_by {request.order_by!r} is not supported; only __name__")
        if request.page_size < 0:
            raise InvalidArgument("page_size must not be negative")
        self.rules.authorize_list_documents(db, request.parent, request.collection_id, request.show_missing,
                                            request.page_size)
        view = self._read_view(db, request)
        collection = f"{request.parent}/{request.collection_id}"
        listed: dict[str, DocumentPb | None] = {}
        for doc in db.documents_under(collection, view.at):
            doc_id, _, below = doc.name[len(collection) + 1 :].partition("/")
            if not below:
                listed[doc.name] = doc
            elif request.show_missing:
                # A document that does not exist but has documents beneath it ("missing" in the console).
                listed.setdefault(f"{collection}/{doc_id}", None)
        after = _decode_page_token(request.page_token)
        names = sorted(name for name in listed if name > after)
        page = names[: request.page_size] if request.page_size else names
        response = firestore.ListDocumentsResponse.pb()()
        for name in page:
            doc = listed[name]
            response.documents.append(apply_mask(doc, _mask(request)) if doc is not None else DocumentPb(name=name))
        if request.page_size and len(names) > len(page):
            response.next_page_token = _encode_page_token(page[-1])
        return response

    def create_document(self, request) -> DocumentPb:
        db = self._parent_database(request.parent)
        if not request.collection_id:
            raise InvalidArgument("collection_id is required")
        doc_id = request.document_id or "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))
        name = f"{request.parent}/{request.collection_id}/{doc_id}"
        w = WritePb(update=DocumentPb(name=name, fields=request.document.fields))
        w.current_document.exists = False
        return self._write_one(db, w, _mask(request))

    def update_document(self, request) -> DocumentPb:
        db = self._document_database(request.document.name)
        w = WritePb(update=request.document)
        if request.HasField("update_mask"):
            w.update_mask.CopyFrom(request.update_mask)
        if request.HasField("current_document"):
            w.current_document.CopyFrom(request.current_document)
        return self._write_one(db, w, _mask(request))

    def delete_document(self, request) -> Empty:
        db = self._document_database(request.name)
        w = WritePb(delete=request.name)
        if request.HasField("current_document"):
            w.current_document.CopyFrom(request.current_document)
        self._commit_without_transaction(db, [w])
        return Empty()

    def batch_get_documents(self, request) -> list:
        db = self._database(request.database)
        for name in request.documents:
            self._check_in_database(db, name)
        view = self._read_view(db, request)
        self._lock_for_read(view, request.documents)
        self.rules.authorize_reads(db, request.documents, lambda name: db.get(name, view.at))
        read_ts = to_timestamp(view.at if view.at is not None else db.read_time())
        responses = []
        mask = _mask(request)
        for name in request.documents:
            response = firestore.BatchGetDocumentsResponse.pb()(read_time=read_ts)
            doc = db.get(name, view.at)
            if doc is None:
                response.missing = name
            else:
                response.found.CopyFrom(apply_mask(doc, mask))
            responses.append(response)
        if view.new_transaction:
            responses = responses or [firestore.BatchGetDocumentsResponse.pb()(read_time=read_ts)]
            responses[0].transaction = view.new_transaction
        return responses

    # -- transactions and writes -------------------------------------------------------------------------

    def begin_transaction(self, request):
        db = self._database(request.database)
        txn = self._begin(db, request.options if request.HasField("options") else TransactionOptionsPb())
        return firestore.BeginTransactionResponse.pb()(transaction=txn.id)

    def commit(self, request):
        db = self._database(request.database)
        writes = list(request.writes)
        for w in writes:
            self._check_in_database(db, write_target(w))
        if request.transaction:
            commit_micros, results = self._commit_in_transaction(db, request.transaction, writes)
        else:
            commit_micros, results = self._commit_without_transaction(db, writes)
        return firestore.CommitResponse.pb()(write_results=results, commit_time=to_timestamp(commit_micros))

    def rollback(self, request) -> Empty:
        db = self._database(request.database)
        if not request.transaction:
            raise InvalidArgument("transaction is required")
        self.transactions.rollback(request.transaction, db)
        return Empty()

    def batch_write(self, request):
        """Each write on its own, not atomically: a status per write (what the BulkWriter sends)."""
        db = self._database(request.database)
        response = firestore.BatchWriteResponse.pb()()
        for w in request.writes:
            try:
                self._check_in_database(db, write_target(w))
                _, (result,) = self._commit_without_transaction(db, [w])
                response.write_results.append(result)
                response.status.add(code=0)
            except EmulatorError as error:
                response.write_results.add()
                response.status.add(code=error.code.value[0], message=error.message)
        return response

    # -- queries ---------------------------------------------------------------------------------------

    def run_query(self, request) -> list:
        db = self._parent_database(request.parent)
        if not request.HasField("structured_query"):
            raise InvalidArgument("structured_query is required")
        structured = request.structured_query
        self.rules.authorize_query(db, request.parent, structured)
        # Production reports documents skipped by `offset` in skipped_results; run without the offset
        # (and with the limit widened by it) and skip here, so the count is exact.
        offset = structured.offset
        if offset < 0:
            raise InvalidArgument("offset must not be negative")
        unskipped = type(structured)()
        unskipped.CopyFrom(structured)
        unskipped.offset = 0
        if structured.HasField("limit"):
            if structured.limit.value < 0:
                raise InvalidArgument("limit must not be negative")
            unskipped.limit.value = min(structured.limit.value + offset, 2**31 - 1)  # stays an int32
        view = self._read_view(db, request)
        if _plan_only(request):  # explain without analyze: the plan, and no query run
            query.validate_query(structured)
            metrics = explain.metrics(structured, analyze=False)
            return [firestore.RunQueryResponse.pb()(explain_metrics=metrics, transaction=view.new_transaction)]
        started = time.perf_counter()
        found = self._query_locked(view, request.parent, unskipped)
        read_ts = to_timestamp(view.at if view.at is not None else db.read_time())
        skipped = min(offset, len(found))
        responses = [
            firestore.RunQueryResponse.pb()(document=doc, read_time=read_ts) for doc in found[offset:]
        ] or [firestore.RunQueryResponse.pb()(read_time=read_ts)]
        responses[0].skipped_results = skipped
        responses[0].transaction = view.new_transaction
        responses[-1].done = True
        if request.HasField("explain_options"):
            responses[-1].explain_metrics.CopyFrom(explain.metrics(
                structured, analyze=True, results_returned=len(found) - skipped, documents_scanned=len(found),
                seconds=time.perf_counter() - started,
            ))
        return responses

    def run_aggregation_query(self, request) -> list:
        db = self._parent_database(request.parent)
        if not request.HasField("structured_aggregation_query"):
            raise InvalidArgument("structured_aggregation_query is required")
        self.rules.authorize_query(db, request.parent, request.structured_aggregation_query.structured_query)
        view = self._read_view(db, request)
        aggregation = request.structured_aggregation_query
        if _plan_only(request):  # explain without analyze: the plan, and no aggregation run
            validate_aggregation(aggregation)
            query.validate_query(aggregation.structured_query)
            metrics = explain.metrics(aggregation.structured_query, analyze=False,
                                      aggregated=aggregated_fields(aggregation))
            return [firestore.RunAggregationQueryResponse.pb()(explain_metrics=metrics,
                                                               transaction=view.new_transaction)]
        started = time.perf_counter()
        candidates = _candidates(db, request.parent, aggregation.structured_query, view.at)
        fields, aggregated = query.aggregate(aggregation, request.parent, candidates)
        response = firestore.RunAggregationQueryResponse.pb()(transaction=view.new_transaction)
        response.read_time.CopyFrom(to_timestamp(view.at if view.at is not None else db.read_time()))
        for alias, value in fields.items():
            response.result.aggregate_fields[alias].CopyFrom(value)
        if request.HasField("explain_options"):
            response.explain_metrics.CopyFrom(explain.metrics(
                aggregation.structured_query, analyze=True, aggregation=True, results_returned=1,
                aggregated=aggregated_fields(aggregation), documents_scanned=aggregated,
                seconds=time.perf_counter() - started,
            ))
        return [response]

    def list_collection_ids(self, request):
        db = self._parent_database(request.parent)
        if request.page_size < 0:
            raise InvalidArgument("page_size must not be negative")
        self.rules.authorize_admin_only(db)
        at = db.read_time(request.read_time if request.HasField("read_time") else None)
        start = len(request.parent) + 1
        ids = sorted({doc.name[start:].split("/", 1)[0] for doc in db.documents_under(request.parent, at)})
        after = _decode_page_token(request.page_token)
        ids = [i for i in ids if i > after]
        page = ids[: request.page_size] if request.page_size else ids
        response = firestore.ListCollectionIdsResponse.pb()(collection_ids=page)
        if request.page_size and len(ids) > len(page):
            response.next_page_token = _encode_page_token(page[-1])
        return response

    def unimplemented(self, request) -> None:
        raise Unimplemented("this RPC is not implemented by the oncetask Firestore emulator")

    # -- the edges: names, reads, locks, commits -----------------------------------------------------------

    def _database(self, key: str) -> Database:
        parts = key.split("/")
        if len(parts) != 4 or parts[0] != "projects" or parts[2] != "databases" or not parts[1] or not parts[3]:
            raise InvalidArgument(f"database {key!r} is not of the form projects/{{project}}/databases/{{database}}")
        return self.store.database(key)

    def _document_database(self, name: str) -> Database:
        db = self._database("/".join(name.split("/")[:4]))
        self._check_in_database(db, name)
        return db

    def _parent_database(self, parent: str) -> Database:
        """The database of a query/list parent: the documents root, or a document under it."""
        db = self._database("/".join(parent.split("/")[:4]))
        if parent != db.root:
            self._check_in_database(db, parent)
        return db

    def _check_in_database(self, db: Database, name: str) -> None:
        if not name.startswith(db.root + "/"):
            raise InvalidArgument(f"document {name!r} is not in database {db.key}")
        paths.validate_document_name(name)

    def _begin(self, db: Database, options) -> Transaction:
        if options.WhichOneof("mode") == "read_only":
            requested = options.read_only.read_time if options.read_only.HasField("read_time") else None
            return self.transactions.begin(db, read_only=True, read_micros=db.read_time(requested))
        return self.transactions.begin(
            db, read_only=False, read_micros=None, retry_id=options.read_write.retry_transaction
        )

    def _read_view(self, db: Database, request) -> ReadView:
        """Resolve a request's consistency selector (transaction / new_transaction / read_time / none)."""
        selector = request.WhichOneof("consistency_selector")
        if selector == "transaction":
            txn = self.transactions.get(request.transaction, db)
            return ReadView(db, txn.read_micros) if txn.read_only else ReadView(db, None, txn)
        if selector == "new_transaction":
            txn = self._begin(db, request.new_transaction)
            if txn.read_only:
                return ReadView(db, txn.read_micros, new_transaction=txn.id)
            return ReadView(db, None, txn, new_transaction=txn.id)
        if selector == "read_time":
            return ReadView(db, db.read_time(request.read_time))
        return ReadView(db, db.read_time())

    def _lock_for_read(self, view: ReadView, names: Iterable[str]) -> None:
        """Take shared locks for a read-write transaction's read. A wounded transaction reads unlocked:
        its commit will answer ABORTED, which is the error the client retries (a failed read is not)."""
        if view.txn is None or view.txn.wounded:
            return
        try:
            view.db.locks.acquire(view.txn, names, Mode.SHARED, self.lock_timeout)
        except Wounded:
            pass
        except LockTimeout as timeout:
            raise Aborted(f"{CONTENTION} (waited {self.lock_timeout:g}s for a lock on {timeout})") from None

    def _query_locked(self, view: ReadView, parent: str, structured) -> list[DocumentPb]:
        """Run a query; in a read-write transaction also lock what it returns. Like production, gaps are
        not locked (a document inserted later into the range is not a conflict). The results are computed
        again after locking, so what is returned is what is locked; three rounds settle any realistic race."""
        found = query.run_query(structured, parent, _candidates(view.db, parent, structured, view.at))
        if view.txn is None:
            return found
        for _ in range(3):
            names = [doc.name for doc in found]
            self._lock_for_read(view, names)
            found = query.run_query(structured, parent, _candidates(view.db, parent, structured, None))
            if {doc.name for doc in found} <= set(view.txn.held) or view.txn.wounded:
                break
        return found

    def _write_one(self, db: Database, w: WritePb, mask) -> DocumentPb:
        self._check_in_database(db, w.update.name)
        commit_micros, _ = self._commit_without_transaction(db, [w])
        doc = db.get(w.update.name, commit_micros)
        assert doc is not None, "a committed update leaves a document"
        return apply_mask(doc, mask)

    def _commit_without_transaction(self, db: Database, writes: list[WritePb]):
        """Commit outside a transaction: take exclusive locks (waiting for transactions that read the
        documents, never aborting them), apply, release. Wounded by an older transaction that needs a lock it
        already took, it lets go of everything and tries again; past the wait bound it answers ABORTED."""
        owner = Owner(wounds=False)
        names = [write_target(w) for w in writes]
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                db.locks.acquire(owner, names, Mode.EXCLUSIVE, max(0.0, deadline - time.monotonic()))
                if db.locks.begin_commit(owner):
                    break
            except Wounded:
                pass
            except LockTimeout as timeout:
                db.locks.release_all(owner)
                raise Aborted(f"{CONTENTION} (waited {self.lock_timeout:g}s for a lock on {timeout})") from None
            db.locks.release_all(owner)
            owner.wounded = False
        try:
            self.rules.authorize_writes(db, writes)  # under the exclusive locks: the stored documents hold still
            return db.commit(writes)
        finally:
            db.locks.release_all(owner)

    def _commit_in_transaction(self, db: Database, txn_id: bytes, writes: list[WritePb]):
        txn = self.transactions.get(txn_id, db)
        if txn.read_only:
            if writes:
                raise InvalidArgument("Cannot modify entities in a read-only transaction")
            self.transactions.end(txn)
            return txn.read_micros, []
        try:
            db.locks.acquire(txn, [write_target(w) for w in writes], Mode.EXCLUSIVE, self.lock_timeout)
        except (Wounded, LockTimeout):
            self.transactions.end(txn)
            raise Aborted(f"{CONTENTION} (transaction {txn.id.hex()} lost a lock conflict)") from None
        # Checked and marked under the lock table's lock: from here no older transaction can wound it.
        if not db.locks.begin_commit(txn):
            self.transactions.end(txn)
            raise Aborted(f"{CONTENTION} (transaction {txn.id.hex()} was aborted by an older one)")
        try:
            self.rules.authorize_writes(db, writes)
            return db.commit(writes)
        finally:
            self.transactions.end(txn)


def _candidates(db: Database, parent: str, structured, at: int | None) -> list[DocumentPb]:
    """The documents a query could return: under its one collection, or anywhere below `parent` for a
    collection group (or a malformed `from`, which the query core rejects with its own message)."""
    selectors = structured.from_
    if len(selectors) == 1 and not selectors[0].all_descendants and selectors[0].collection_id:
        return db.documents_under(f"{parent}/{selectors[0].collection_id}", at)
    return db.documents_under(parent, at)


def _plan_only(request) -> bool:
    return request.HasField("explain_options") and not request.explain_options.analyze


def _mask(request):
    return request.mask if request.HasField("mask") else None


def _encode_page_token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode()


def _decode_page_token(token: str) -> str:
    if not token:
        return ""
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument(f"page_token {token!r} is not one this emulator issued") from None


# -- the gRPC surface --------------------------------------------------------------------------------------

def _database_of(request) -> str:
    """The database a request addresses, for the per-database call counters."""
    for field in ("database", "parent", "name"):
        value = getattr(request, field, "")
        if value:
            return "/".join(value.split("/")[:4])
    if hasattr(request, "document"):
        return "/".join(request.document.name.split("/")[:4])
    return ""


def _guard(method: str, handler: Callable, counters: CallCounters, streaming: bool) -> Callable:
    """Count the call, run it, and map every error to a gRPC status; unexpected ones become INTERNAL."""

    def call(request, context: grpc.ServicerContext):
        counters.count(method, _database_of(request))
        caller = CALL_METADATA.set(context.invocation_metadata())  # who is asking, for security rules
        try:
            result = handler(request)
            return iter(result) if streaming else result
        except EmulatorError as error:
            code, message = error.code, error.message
        except Exception as error:  # noqa: BLE001 - the server must keep serving whatever happens
            traceback.print_exc(file=sys.stderr)
            code, message = grpc.StatusCode.INTERNAL, f"internal error in {method}: {type(error).__name__}: {error}"
        finally:
            CALL_METADATA.reset(caller)
        context.abort(code, message)

    return call


def generic_handler(service: FirestoreService) -> grpc.GenericRpcHandler:
    fs = firestore
    unary = {
        "GetDocument": (service.get_document, fs.GetDocumentRequest, document.Document),
        "ListDocuments": (service.list_documents, fs.ListDocumentsRequest, fs.ListDocumentsResponse),
        "CreateDocument": (service.create_document, fs.CreateDocumentRequest, document.Document),
        "UpdateDocument": (service.update_document, fs.UpdateDocumentRequest, document.Document),
        "DeleteDocument": (service.delete_document, fs.DeleteDocumentRequest, None),
        "BeginTransaction": (service.begin_transaction, fs.BeginTransactionRequest, fs.BeginTransactionResponse),
        "Commit": (service.commit, fs.CommitRequest, fs.CommitResponse),
        "Rollback": (service.rollback, fs.RollbackRequest, None),
        "ListCollectionIds": (service.list_collection_ids, fs.ListCollectionIdsRequest, fs.ListCollectionIdsResponse),
        "BatchWrite": (service.batch_write, fs.BatchWriteRequest, fs.BatchWriteResponse),
        "PartitionQuery": (service.unimplemented, fs.PartitionQueryRequest, fs.PartitionQueryResponse),
    }
    streams = {
        "BatchGetDocuments": (service.batch_get_documents, fs.BatchGetDocumentsRequest, fs.BatchGetDocumentsResponse),
        "RunQuery": (service.run_query, fs.RunQueryRequest, fs.RunQueryResponse),
        "RunAggregationQuery": (
            service.run_aggregation_query, fs.RunAggregationQueryRequest, fs.RunAggregationQueryResponse,
        ),
    }
    handlers = {}
    for method, (fn, request_type, response_type) in unary.items():
        handlers[method] = grpc.unary_unary_rpc_method_handler(
            _guard(method, fn, service.counters, streaming=False),
            request_deserializer=request_type.pb().FromString,
            response_serializer=(response_type.pb() if response_type else Empty).SerializeToString,
        )
    for method, (fn, request_type, response_type) in streams.items():
        handlers[method] = grpc.unary_stream_rpc_method_handler(
            _guard(method, fn, service.counters, streaming=True),
            request_deserializer=request_type.pb().FromString,
            response_serializer=response_type.pb().SerializeToString,
        )

    handlers["Listen"] = grpc.stream_stream_rpc_method_handler(
        service.listens.listen,  # counts the call itself, once the first request names the database
        request_deserializer=fs.ListenRequest.pb().FromString,
        response_serializer=encode_response,
    )
    return grpc.method_handlers_generic_handler("google.firestore.v1.Firestore", handlers)
