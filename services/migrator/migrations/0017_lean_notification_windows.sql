-- Lean event consumers (issue 14's "bench:edge with notifications and webhooks on"): under a
-- transfer storm the notifier cost about 2-5 ms of CPU per event, more than the API's whole
-- transfer. Each payment into an open window took three round trips and read back the window's
-- whole `items` array (which grew by one per payment: quadratic in the payments of a minute).
--
-- A window now keeps at most the first items the digest lists (the notifier's cap) and counts
-- the rest: `item_count` is every payment the window gathered, `totals` their sum per currency
-- ({"USD": "12345"}, minor units as decimal strings: a sum may pass bigint's range). The notifier
-- adds a whole batch of events to every recipient's window in one INSERT ... ON CONFLICT.
ALTER TABLE notification_windows
  ADD COLUMN item_count integer NOT NULL DEFAULT 0 CONSTRAINT notification_windows_item_count_check CHECK (item_count >= 0),
  ADD COLUMN totals     jsonb NOT NULL DEFAULT '{}' CONSTRAINT notification_windows_totals_check CHECK (jsonb_typeof(totals) = 'object');

-- Windows open while this migration runs keep what they gathered: count and totals from their items.
UPDATE notification_windows w
   SET item_count = jsonb_array_length(w.items),
       totals = coalesce((SELECT jsonb_object_agg(currency, total::text)
                            FROM (SELECT i->>'currency' AS currency, sum((i->>'amount')::numeric) AS total
                                    FROM jsonb_array_elements(w.items) AS i GROUP BY 1) AS t), '{}');

-- The sum of two totals objects, currency by currency.
CREATE FUNCTION notification_totals_add(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(jsonb_object_agg(currency, total::text), '{}')
    FROM (SELECT currency, sum(amount::numeric) AS total
            FROM (SELECT key, value FROM jsonb_each_text(a) UNION ALL SELECT key, value FROM jsonb_each_text(b)) AS e(currency, amount)
           GROUP BY currency) AS t
$$;

-- The first n elements of a JSON array (the array itself when it is no longer).
CREATE FUNCTION jsonb_array_head(a jsonb, n integer) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN jsonb_array_length(a) <= n THEN a
              ELSE (SELECT coalesce(jsonb_agg(x ORDER BY o), '[]') FROM jsonb_array_elements(a) WITH ORDINALITY AS e(x, o) WHERE o <= n) END
$$;
