// Scenarios for tests/firestore_emulator/test_node_client.py: each drives the emulator through Google's Node.js
// client as that client's own system tests drive production, and returns what the client saw.
'use strict';
const {AggregateField, FieldPath} = require('@google-cloud/firestore');

async function setAll(collection, docs) {
  const batch = collection.firestore.batch();
  for (const [id, data] of Object.entries(docs)) {
    batch.set(collection.doc(id), data);
  }
  await batch.commit();
}

const ids = snapshot => snapshot.docs.map(doc => doc.id);

const SNAPSHOT_TIMEOUT_MS = 10000;  // a snapshot comes within milliseconds; this is for a starved listener

// Listens to `query`, keeping what `describe` makes of each snapshot. `until(count)` resolves with them once
// `count` have come; it rejects if the listener fails, or if they stop coming (naming what came), so a listener
// the emulator starves fails in seconds rather than at the test's own timeout.
function listen(query, describe) {
  const seen = [];
  let failure = null;
  let wake = () => {};
  const unsubscribe = query.onSnapshot(
    snapshot => { seen.push(describe(snapshot)); wake(); },
    error => { failure = error; wake(); });
  async function until(count) {
    const deadline = Date.now() + SNAPSHOT_TIMEOUT_MS;
    while (seen.length < count) {
      if (failure) {
        failure.message += ` (listener failed after ${seen.length} snapshots: ${JSON.stringify(seen)})`;
        throw failure;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no snapshot ${count} within ${SNAPSHOT_TIMEOUT_MS} ms; saw ${JSON.stringify(seen)}`);
      }
      await new Promise(resolve => {
        const timer = setTimeout(resolve, left);  // cleared on wake-up: a pending timer would delay the exit
        wake = () => { clearTimeout(timer); resolve(); };
      });
    }
    return seen;
  }
  return {until, unsubscribe};
}

module.exports = {
  async sumOverflow(db) {
    const col = db.collection('overflow');
    await setAll(col, {a: {rating: Number.MAX_VALUE}, b: {rating: Number.MAX_VALUE}, c: {rating: -1}});
    const sum = await col.aggregate({total: AggregateField.sum('rating')}).get();
    const avg = await col.aggregate({mean: AggregateField.average('rating')}).get();
    return {sum: sum.data().total, average: avg.data().mean};
  },

  async numericIds(db) {
    const col = db.collection('ids');
    const docIds = ['A', '7', '__id7__', '__id12__', '__id-2__', '__id1_', '__id',
      '__id9223372036854775807__', '__id-9223372036854775808__'];
    await setAll(col, Object.fromEntries(docIds.map(id => [id, {a: 1}])));
    return ids(await col.orderBy(FieldPath.documentId()).get());
  },

  async nanInRange(db) {
    const col = db.collection('special');
    await setAll(col, {
      doc1: {key: 'a', sort: 0, v: 0}, doc2: {key: 'b', sort: NaN, v: 1}, doc3: {key: 'c', sort: null, v: 3},
      doc4: {key: 'd', v: 0}, doc5: {key: 'e', sort: 1}, doc6: {key: 'f', sort: 1, v: 1},
    });
    return {
      lessOrEqual: ids(await col.where('sort', '<=', 2).get()),
      multiField: ids(await col.where('key', '!=', 'a').where('sort', '<=', 2).get()),
    };
  },

  async inequalityOrder(db) {
    const col = db.collection('keyed');
    await setAll(col, {
      doc1: {key: 'a', sort: 0, v: 5}, doc2: {key: 'aa', sort: 4, v: 4}, doc3: {key: 'b', sort: 3, v: 3},
      doc4: {key: 'b', sort: 2, v: 2}, doc5: {key: 'b', sort: 2, v: 1}, doc6: {key: 'b', sort: 0, v: 0},
    });
    const start = await col.doc('doc2').get();
    const keyFirst = col.where('key', '!=', 'a').where('sort', '>', 1).where('v', 'in', [1, 2, 3, 4]);
    const sortFirst = col.where('sort', '>', 1).where('key', '!=', 'a').where('v', 'in', [1, 2, 3, 4]);
    const byName = col.where('sort', '>=', 1).where('key', '!=', 'a').where(FieldPath.documentId(), '<', 'doc5');
    return {
      keyFirst: ids(await keyFirst.get()),
      sortFirst: ids(await sortFirst.get()),
      // The client adds the implicit orders itself to build the cursor; the server must agree with them.
      withCursor: ids(await sortFirst.startAt(start).get()),
      nameLast: ids(await byName.get()),
    };
  },

  async multiFieldAggregation(db) {
    const col = db.collection('books');
    await setAll(col, {
      a: {pages: 100, year: 1980}, b: {pages: 50, year: 2020}, c: {pages: 150, year: 2021}, d: {pages: 50},
    });
    const snapshot = await col.aggregate({
      totalPages: AggregateField.sum('pages'),
      averagePages: AggregateField.average('pages'),
      averageYear: AggregateField.average('year'),
      count: AggregateField.count(),
    }).get();
    return snapshot.data();
  },

  async explainQuery(db) {
    const col = db.collection('explained');
    await setAll(col, {doc1: {foo: 1}, doc2: {foo: 2}, doc3: {foo: 1}});
    const plan = await col.where('foo', '>', 1).explain({analyze: false});
    const profile = await col.where('foo', '==', 1).explain({analyze: true});
    const aggregate = await col.where('foo', '==', 1).count().explain({analyze: true});
    const stats = profile.metrics.executionStats;
    return {
      plan: {indexesUsed: plan.metrics.planSummary.indexesUsed, stats: plan.metrics.executionStats,
        snapshot: plan.snapshot},
      profile: {indexesUsed: profile.metrics.planSummary.indexesUsed, size: profile.snapshot.size,
        resultsReturned: stats.resultsReturned, readOperations: stats.readOperations,
        durationPositive: stats.executionDuration.seconds > 0 || stats.executionDuration.nanoseconds > 0,
        debugStatKeys: Object.keys(stats.debugStats).sort()},
      aggregate: {count: aggregate.snapshot.data().count,
        resultsReturned: aggregate.metrics.executionStats.resultsReturned},
    };
  },

  async deletePreconditions(db) {
    const col = db.collection('preconditions');
    const written = await col.doc('a').create({n: 1});
    await col.doc('a').delete({lastUpdateTime: written.writeTime});
    await col.doc('b').create({n: 1});
    await col.doc('b').delete({exists: true});
    const snapshot = await col.get();
    return snapshot.size;
  },

  async vectorSearch(db) {
    const {FieldValue} = require('@google-cloud/firestore');
    const col = db.collection('vectors');
    await setAll(col, {
      '1': {foo: 'bar'}, '2': {foo: 'bar', embedding: FieldValue.vector([2, 0])},
      '3': {foo: 'bar', embedding: FieldValue.vector([1, 100])}, '4': {foo: 'bar', embedding: FieldValue.vector([1, -0.1])},
      '5': {foo: 'bar', embedding: FieldValue.vector([4, 4])}, '6': {foo: 'x', embedding: FieldValue.vector([1, 0])},
    });
    const result = await col.where('foo', '==', 'bar').findNearest({
      vectorField: 'embedding', queryVector: [1, 0], limit: 5, distanceMeasure: 'EUCLIDEAN',
      distanceResultField: 'distance', distanceThreshold: 5,
    }).get();
    return result.docs.map(doc => [doc.id, doc.get('distance')]);
  },

  async listenToQuery(db) {
    // onSnapshot drives the Listen stream: the current result first, then one snapshot per change, each with
    // its document changes (what the client builds from TargetChange and DocumentChange/Delete/Remove).
    const col = db.collection('listened');
    await setAll(col, {a: {n: 1, tag: 'in'}, b: {n: 2, tag: 'in'}, c: {n: 3, tag: 'out'}});
    const listener = listen(col.where('tag', '==', 'in').orderBy('n'),
      snapshot => ({ids: ids(snapshot), changes: snapshot.docChanges().map(c => [c.type, c.doc.id])}));
    try {
      await listener.until(1);
      await col.doc('d').set({n: 0, tag: 'in'});          // enters the result, first by n
      await listener.until(2);
      await col.doc('a').update({n: 5});                  // moves to the end
      await listener.until(3);
      await col.doc('b').update({tag: 'out'});            // leaves the result
      await listener.until(4);
      await col.doc('d').delete();                        // deleted
      return await listener.until(5);
    } finally {
      listener.unsubscribe();
    }
  },
};
