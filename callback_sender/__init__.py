"""The callback sender: delivers the status callback events the database writes (``worker.py``
says what happens to an event; ``webhook.py`` how one request is signed and sent)."""
