-- Received requests are now processed (first attempt) before they are
-- stored, so most inserts leave nothing for the worker. The per-statement
-- trigger woke the worker for every insert (and for the duplicate insert,
-- even when it inserted nothing); storage now notifies only when it stores
-- a request that is due at once.
DROP TRIGGER IF EXISTS inbound_events_notify ON inbound_events;
DROP FUNCTION IF EXISTS hub_inbound_notify();
