"""oncetask: background jobs on Cloud Tasks and Firestore, enqueued once, run once, never stuck."""
