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

main().then(
  result => console.log(JSON.stringify({result}, jsonNumbers)),
  error => console.log(JSON.stringify({error: {code: error.code ?? null, message: String(error.message)}})),
);

// JSON has no NaN or infinities: send them as strings so the test sees exactly what the client decoded.
function jsonNumbers(key, value) {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}
