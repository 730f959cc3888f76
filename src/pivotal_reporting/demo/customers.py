"""Customers (plausible company names) and their 1-4 projects each."""

from __future__ import annotations

from pivotal_reporting.demo.random_sql import project_count

# Company x industry x legal form, visited in a scattered order (7919 is prime), so
# neighbouring customers differ and names repeat only past every combination; then a
# place word is prefixed ("Pacific Northwind Logistics Inc.").
INSERT_CUSTOMERS = """
INSERT INTO customers (id, organization_id, name, email, created_at, updated_at)
SELECT 'cus_' || %(slug)s || '_' || lpad(c::text, 6, '0'),
       %(org)s,
       CASE WHEN lap > 0 THEN place || ' ' ELSE '' END || company || ' ' || industry || ' ' || legal,
       'accounts@' || lower(CASE WHEN lap > 0 THEN place ELSE '' END || company || industry)
           || '.example',
       %(setup_at)s::timestamptz + mod(c, 90) * interval '1 day',
       %(setup_at)s::timestamptz + mod(c, 90) * interval '1 day'
FROM generate_series(1, %(customers)s) AS c,
     LATERAL (SELECT mod((c - 1)::bigint * 7919, %(name_combos)s) AS i,
                     (c - 1) / %(name_combos)s AS lap) AS p,
     LATERAL (
         SELECT (%(company_words)s::text[])[1 + mod(i, %(n_company)s)] AS company,
                (%(industry_words)s::text[])[1 + mod(i / %(n_company)s, %(n_industry)s)] AS industry,
                (%(legal_forms)s::text[])[1 + i / (%(n_company)s * %(n_industry)s)] AS legal,
                (%(place_words)s::text[])[1 + mod(lap - 1, %(n_place)s)] AS place
     ) AS words
"""

# Project j of customer c: distinct engagement names per customer (7 is coprime with 24
# words, so j = 1..4 never repeat one); about a quarter are closed.
INSERT_PROJECTS = f"""
INSERT INTO projects (id, organization_id, customer_id, name, status, created_at, updated_at)
SELECT 'prj_' || %(slug)s || '_' || lpad(c::text, 6, '0') || '_' || j,
       %(org)s,
       'cus_' || %(slug)s || '_' || lpad(c::text, 6, '0'),
       (%(project_words)s::text[])[1 + mod(c * 5 + j * 7, cardinality(%(project_words)s::text[]))]
           || ' ' || (2024 + mod(c + j, 3)),
       CASE WHEN (hashint8extended(c * 8 + j, %(seed_projects)s) & 3) = 0
            THEN 'closed' ELSE 'active' END,
       %(setup_at)s::timestamptz + mod(c, 90) * interval '1 day',
       %(setup_at)s::timestamptz + mod(c, 90) * interval '1 day'
FROM generate_series(1, %(customers)s) AS c,
     LATERAL generate_series(1, {project_count("c")}) AS j
"""  # noqa: S608 -- reviewed: constants only, values are bound
