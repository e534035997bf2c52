"""The outbox: the one way anything reaches SNS.

An outbox row is a publication still owed to SNS: the notification, the channels the SNS message
addresses (its ``channels`` attribute, which the subscriptions' filter policies match) and when
it is due (``next_attempt_at``). Rows are written in the same statement as the state change they
publish (``gateway/notifications/repository.py``: an accept writes the notification, its
deliveries and one row addressing every targeted channel), so a 201 means the publication is
owed. From there two paths lead to SNS, and either is enough:

- ``OutboxPublisher`` (``publisher.py``) publishes right after the commit: the accept hands it the
  publication, a few workers send them in ``PublishBatch`` calls of up to ten, and the rows SNS
  confirmed are deleted. One-offs go first: a batch's publications (the bulk lane) are sent
  when no one-off is waiting, and each lane has its own room in memory, so a batch of a thousand
  never delays nor crowds out a one-off queued after it (``shared/topology.py``: the lanes).
- ``OutboxRelay`` (``relay.py``) in every gateway replica takes what the immediate path did not
  clear: rows due for longer than ``GATEWAY_OUTBOX_GRACE_SECONDS`` (SNS was down, the process
  died between commit and publish).

What happens to a row
---------------------
- *Success*: SNS confirms the message; the row is deleted.
- *SNS refuses or is unreachable* (immediate path): the row stays; the relay takes it once its
  grace period is over.
- *SNS refuses or is unreachable* (relay): the row's next attempt is pushed out
  (``shared/backoff.py``'s ``outbox_retry``: 1 s doubling with jitter, up to
  ``GATEWAY_OUTBOX_MAX_BACKOFF_SECONDS``) with the reason in ``last_error``; nothing is ever
  given up on.
- *A crash* (the gateway dies after the commit, before or during publishing): the row is still
  there; a relay publishes it after the grace period. A relay that dies mid-pass leaves its
  claimed rows leased (``next_attempt_at`` pushed out by the lease), and another relay takes
  them when the lease ends.
- *Database down*: the immediate path has published but cannot delete: the row stays and the
  relay publishes it again later (a duplicate the senders' claims make harmless). The relay
  logs and tries again on its next tick.
- *Shutdown*: the publisher gets a few seconds to publish what it has queued; anything left
  stays in the outbox for the relay of this or another replica.

Relays claim rows as leases with ``FOR UPDATE SKIP LOCKED``, so several replicas share the work
without waiting on each other. A message may reach SNS twice (published, then the process died
before deleting its row); the senders' delivery claims make that harmless.
"""
