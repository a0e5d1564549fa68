-- The producer's own relay publishes the events of its hottest paths (delivery
-- outcomes, received webhooks) straight after their transaction commits,
-- from memory. Those rows are inserted leased to it: other relays leave them
-- alone until `lease_until`, and claim them after that (the producer died
-- or could not publish), so every event is still published at least once.
-- Rows without a lease are claimed by any relay at once, as before.
ALTER TABLE outbox ADD COLUMN lease_until timestamptz;

-- The per-statement trigger woke every relay for every insert, leased or not;
-- storage now notifies only when it stores rows that any relay may claim.
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
DROP FUNCTION IF EXISTS hub_outbox_notify();
