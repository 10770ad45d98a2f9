"""Development-only local emulators for Firestore and Cloud Tasks, and the tools that start them.

Nothing under functions/ imports this package: it is never deployed.
"""
