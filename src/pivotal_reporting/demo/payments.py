"""Payments, one set-based INSERT (see sales.py for the ``OFFSET 0`` staging)."""

from __future__ import annotations

from pivotal_reporting.demo.random_sql import (
    customer_id,
    customer_pick,
    local_time,
    log_uniform,
    row_hashes,
    row_id,
    timeline_position,
    uniform,
    weighted_choice,
    working_day,
)
from pivotal_reporting.demo.sales import ANCHOR_DATE, CURRENCY

u = uniform

METHOD_WEIGHTS = (
    ("bank_transfer", 45),
    ("credit_card", 25),
    ("check", 15),
    ("cash", 5),
    ("other", 10),
)
# For payments not settling an invoice (deposits, retainers, payments on account).
UNALLOCATED_STATUS_WEIGHTS = (
    ("completed", 60),
    ("pending", 14),
    ("failed", 15),
    ("refunded", 11),
)
_STATUS_COVER = "(ARRAY['completed', 'pending', 'failed', 'refunded'])[g]"

# Payment g settles invoice g when that invoice received money (its amount paid, on its
# paid date, or for a part-paid or written-off one some day after issue); otherwise it is
# unallocated, $50-$60,000 on a log scale, so every amount bucket has rows. Pending
# payments are recent (older ones completed); cash is for small amounts only.
INSERT_PAYMENTS = f"""
INSERT INTO payments (id, organization_id, invoice_id, customer_id, amount, currency, method,
                      status, paid_at, reference, created_at)
SELECT {row_id("pay")}, %(org)s, invoice_id, customer_id, amount, currency, method, status,
       paid_at,
       CASE method
           WHEN 'bank_transfer' THEN 'TRF-' || lpad((h3 & 268435455)::text, 9, '0')
           WHEN 'credit_card' THEN (ARRAY['VISA', 'MC', 'AMEX'])[1 + mod(h3 & 3, 3)]
                || '-' || lpad(((h3 >> 8) & 8191)::text, 4, '0')
           WHEN 'check' THEN 'CHK-' || (100000 + (h3 & 65535))
           WHEN 'cash' THEN 'CASH-' || to_char(paid_at AT TIME ZONE %(tz)s, 'YYYYMMDD')
           ELSE 'PP-' || upper(to_hex(h3 & 4294967295))
       END,
       paid_at
FROM (
    SELECT *,
           CASE WHEN g <= 4 THEN {_STATUS_COVER}
                WHEN invoice_id IS NOT NULL THEN 'completed'
                WHEN status0 = 'pending' AND paid_at < %(anchor)s::timestamptz - interval '21 days'
                    THEN 'completed'
                ELSE status0 END AS status,
           CASE WHEN g > 5 AND method0 = 'cash' AND amount > 2000 THEN 'bank_transfer'
                ELSE method0 END AS method
    FROM (
        SELECT g, h1, h2, h3, invoice_id,
               coalesce(i_customer, {customer_id(customer_pick(u(0)))}) AS customer_id,
               coalesce(i_paid, {log_uniform(u(1), 50, 60000)}) AS amount,
               coalesce(i_currency, {CURRENCY.format(u=u(2))}) AS currency,
               CASE WHEN i_status = 'paid' THEN i_paid_at
                    WHEN invoice_id IS NOT NULL THEN {
    local_time(f"i_issue + floor({u(3)} * least({ANCHOR_DATE} - i_issue, 40))::int", 9, 8, u(4))
}
                    ELSE {local_time(working_day(timeline_position(u(3))), 7, 12, u(4))}
               END AS paid_at,
               {weighted_choice(METHOD_WEIGHTS, u(5), cover="g")} AS method0,
               {weighted_choice(UNALLOCATED_STATUS_WEIGHTS, u(6))} AS status0
        FROM (
            SELECT g, {row_hashes("payments", 3)},
                   i.id AS invoice_id, i.customer_id AS i_customer, i.amount_paid AS i_paid,
                   i.currency AS i_currency, i.status AS i_status, i.paid_at AS i_paid_at,
                   i.issue_date AS i_issue
            FROM generate_series(%(g_from)s::int, %(g_to)s::int) AS g
            LEFT JOIN invoices AS i
                ON i.organization_id = %(org)s AND i.id = {row_id("inv")} AND i.amount_paid > 0
            OFFSET 0
        ) AS joined OFFSET 0
    ) AS drawn
) AS payments
"""  # noqa: S608 -- reviewed: constants only, values are bound
