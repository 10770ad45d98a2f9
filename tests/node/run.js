// Runs one scenario of scenarios.js with Google's Node.js Firestore client against the emulator named by
// FIRESTORE_EMULATOR_HOST, in the project named by ONCETASK_TEST_PROJECT, and prints its result as one JSON line:
//   node tests/node/run.js <scenario>   ->   {"result": ...}  or  {"error": {"code": ..., "message": ...}}
'use strict';
const {Firestore} = require('@google-cloud/firestore');
const scenarios = require('./scenarios');

async function main() {
  const name = process.argv[2];
  if (!scenarios[name]) {
    throw new Error(`no scenario ${name}; known: ${Object.keys(scenarios).join(', ')}`);
  }
  const db = new Firestore({projectId: process.env.ONCETASK_TEST_PROJECT});
  try {
    return await scenarios[name](db);
  } finally {
    await db.terminate();
  }
}

const EXIT_GRACE_MS = 10000;

main().then(
  result => console.log(JSON.stringify({result}, jsonNumbers)),
  error => console.log(JSON.stringify({error: {code: error.code ?? null, message: String(error.message)}})),
).finally(() => {
  // With the client terminated, the process exits once its last gRPC call has ended. Still alive after this, it
  // waits for a call the server never ended (as a Listen stream kept open after the client half-closed it):
  // fail now, saying so, rather than at the test's timeout. unref(): this timer alone keeps nothing alive.
  setTimeout(() => {
    console.error(`still running ${EXIT_GRACE_MS} ms after the scenario ended, held by: ` +
      `${process.getActiveResourcesInfo().join(', ')} (a call the server never ended?)`);
    process.exit(1);
  }, EXIT_GRACE_MS).unref();
});

// JSON has no NaN or infinities: send them as strings so the test sees exactly what the client decoded.
function jsonNumbers(key, value) {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}
