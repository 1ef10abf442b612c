-- Test catalog beside configs/sample's schema (loaded first). View
-- definitions are written schema-qualified, as pg_get_viewdef returns
-- them under an empty search_path.
CREATE TABLE analytics.customers (customer_id integer, segment text);
CREATE TABLE analytics.orders (order_id bigint, note text);
CREATE TABLE sales."Orders" ("OrderId" bigint, "CustomerId" integer, "Note" text, amount numeric);
CREATE TABLE products (product_id integer, name text, price numeric, tags text[], attrs jsonb);
CREATE TABLE events (event_id bigint, customer_id integer, kind text, payload jsonb, at timestamptz) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE SEQUENCE order_seq;
CREATE VIEW public.customer_overview AS SELECT c.customer_id, c.city, c.email FROM public.customers c;
CREATE VIEW public.customer_religion AS SELECT c.customer_id, c.religion FROM public.customers c;
CREATE VIEW public.religion_nested AS SELECT r.customer_id, r.religion FROM public.customer_religion r;
CREATE VIEW public.catholics AS SELECT c.customer_id FROM public.customers c WHERE c.religion = 'römisch-katholisch';
CREATE VIEW public.city_stats AS SELECT c.city, count(*) AS n FROM public.customers c GROUP BY c.city;
CREATE VIEW public.overview_berlin AS SELECT o.customer_id, o.city FROM public.customer_overview o WHERE o.city = 'Berlin';
CREATE VIEW public.city_nested AS SELECT s.city, s.n FROM public.city_stats s WHERE s.n > 10;
CREATE VIEW public.email_domains AS SELECT c.customer_id, split_part(c.email, '@', 2) AS domain, c.city FROM public.customers c;
CREATE VIEW public.order_totals AS SELECT o.status, sum(o.amount) AS total FROM public.orders o GROUP BY o.status;
CREATE VIEW public.classified_view AS SELECT c.customer_id, c.email, c.city FROM public.customers c;
CREATE VIEW public.udf_view AS SELECT p.product_id, public.evil_fn(p.name) AS x FROM public.products p;
CREATE MATERIALIZED VIEW public.monthly_orders AS SELECT date_trunc('month', o.ordered_at) AS month, count(*) AS n FROM public.orders o GROUP BY 1;
CREATE MATERIALIZED VIEW public.customer_cities AS SELECT c.customer_id, c.city FROM public.customers c;
