"""Alert channels behind one small interface, and the outbox dispatcher."""
