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

A *scheduled* row (``release_at`` set: a ``send_at``, or the recipient's quiet hours) takes the
second path only: it is due at its release time, without the grace period, and the immediate
path never sees it. Its deliveries are ``scheduled`` until the relay's claim makes them
``pending``, in the claim's own statement, before anything is published; until then
``POST /notifications/{id}/cancel`` can delete the row and cancel them (it locks the row first,
as the claim does, so exactly one of the two wins). The relay sleeps until the next row is due
(at most its poll interval), so a scheduled row is published at its time.

What happens to a row
---------------------
- *Success*: SNS confirms the message; the row is deleted, and the time is noted on its
  deliveries not yet final (``published_at``, which ``notifyctl reconcile`` reads).
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

``notifyctl reconcile`` (``notifyctl/reconcile.py``) writes rows too, for deliveries whose queue
message was lost, and publishes them as a relay does.

Relays claim rows as leases with ``FOR UPDATE SKIP LOCKED``, so several replicas share the work
without waiting on each other. A message may reach SNS twice (published, then the process died
before deleting its row); the senders' delivery claims make that harmless.
"""
