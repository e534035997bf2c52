"""Status callbacks: each client's (certificate CN's) callback URL, events and signing secret.

``PUT /callbacks`` sets it, ``GET`` shows it with its delivery state, ``DELETE`` removes it (and the
events still owed to it), ``POST /callbacks/rotate-secret`` replaces the secret. The events
themselves are written by the database (triggers on ``deliveries``, migration 0007) and sent by
``callback_sender/``.
"""
