"""Quotes and invoices, one set-based INSERT each.

Each query nests ``OFFSET 0`` subqueries, one per stage (hash the row, draw its raw
values, derive dependent values): the fence keeps PostgreSQL from inlining a stage into
the next and evaluating its expressions once per reference.
"""

from __future__ import annotations

from pivotal_reporting.demo.random_sql import (
    customer_id,
    customer_pick,
    local_time,
    log_uniform,
    project_count,
    project_id,
    row_hashes,
    row_id,
    timeline_position,
    uniform,
    weighted_choice,
    working_day,
)
from pivotal_reporting.models.business import DECIDED_QUOTE_STATUSES

u = uniform
DECIDED = "(" + ", ".join(f"'{s}'" for s in DECIDED_QUOTE_STATUSES) + ")"

QUOTE_STATUS_WEIGHTS = (
    ("draft", 8),
    ("sent", 10),
    ("accepted", 40),
    ("rejected", 22),
    ("expired", 12),
    ("cancelled", 8),
)
INVOICE_STATUS_WEIGHTS = (
    ("paid", 50),
    ("issued", 22),
    ("part_paid", 10),
    ("void", 5),
    ("written_off", 4),
    ("draft", 9),
)
ANCHOR_DATE = "(%(anchor)s::timestamptz AT TIME ZONE %(tz)s)::date"
CURRENCY = "CASE WHEN {u} < %(second_share)s THEN %(second_currency)s ELSE %(base_currency)s END"

# Quotes: created on working days (business hours, local time) over two years; decided
# (accepted, rejected, expired) after a skewed 0-45 days; expired ones 30 days (their
# validity) plus up to 15 days later. A decision that would fall after the anchor leaves
# the quote still "sent".
INSERT_QUOTES = f"""
INSERT INTO quotes (id, organization_id, quote_number, customer_id, project_id, status, currency,
                    total_amount, created_at, updated_at, sent_at, decided_at, valid_until)
SELECT {row_id("quo")}, %(org)s,
       'Q-' || to_char(created_at AT TIME ZONE %(tz)s, 'YYYY') || '-' || lpad(g::text, 8, '0'),
       {customer_id("c")},
       CASE WHEN {u(7)} >= 0.1 THEN {project_id("c", f"1 + floor({u(8)} * {project_count('c')})")} END,
       status, currency, amount, created_at,
       coalesce(decided_at, sent_at, created_at),
       sent_at, decided_at,
       (created_at AT TIME ZONE %(tz)s)::date + 30
FROM (
    SELECT *,
           CASE WHEN status = 'draft' THEN NULL
                WHEN decided_at IS NOT NULL
                    THEN created_at + (decided_at - created_at) * 0.9 * {u(9)}
                ELSE least(created_at + interval '48 hours' * {u(9)},
                           greatest(created_at, %(anchor)s::timestamptz))
           END AS sent_at
    FROM (
        SELECT *,
               CASE WHEN status0 IN {DECIDED} AND decision > %(anchor)s THEN 'sent'
                    ELSE status0 END AS status,
               CASE WHEN status0 IN {DECIDED} AND decision <= %(anchor)s THEN decision
               END AS decided_at
        FROM (
            SELECT *,
                   created_at + interval '1 day' * CASE WHEN status0 = 'expired'
                       THEN 30 + 15 * {u(4)}
                       ELSE 0.02 + 44.98 * power({u(4)}, 3.5) END AS decision
            FROM (
                SELECT g, h1, h2, h3, {customer_pick(u(0))} AS c,
                       {weighted_choice(QUOTE_STATUS_WEIGHTS, u(1), cover="g")} AS status0,
                       {local_time(working_day(timeline_position(u(2))), 8, 10, u(3))}
                           AS created_at,
                       {CURRENCY.format(u=u(5))} AS currency,
                       {log_uniform(f"({u(6)} + {u(10)}) / 2", 500, 250000)} AS amount
                FROM (
                    SELECT g, {row_hashes("quotes", 3)}
                    FROM generate_series(%(g_from)s::int, %(g_to)s::int) AS g OFFSET 0
                ) AS hashed OFFSET 0
            ) AS drawn OFFSET 0
        ) AS timed OFFSET 0
    ) AS settled
) AS quotes
"""  # noqa: S608 -- reviewed: constants only, values are bound

CUSTOMER = customer_pick(u(0))

# Invoices: invoice g bills quote g when that quote was accepted (its customer, project,
# currency and amount, issued 1-20 days after the decision); otherwise it is a
# time-and-materials invoice of its own. Open invoices older than two months (drafts:
# one month) were mostly paid since; a payment that would land after the anchor leaves
# the invoice open; an issue date after the anchor makes it a draft (scheduled).
INSERT_INVOICES = f"""
INSERT INTO invoices (id, organization_id, invoice_number, customer_id, project_id, quote_id,
                      status, currency, total_amount, amount_paid, balance_due, issue_date,
                      due_date, paid_at, created_at, updated_at)
SELECT {row_id("inv")}, %(org)s, 'INV-' || lpad(g::text, 8, '0'),
       customer_id, project_id, quote_id, status, currency, total_amount, amount_paid,
       total_amount - amount_paid, issue_date, issue_date + terms,
       paid_at, created_at, coalesce(paid_at, created_at)
FROM (
    SELECT *,
           CASE status
               WHEN 'paid' THEN total_amount
               WHEN 'part_paid' THEN round(total_amount * (0.2 + 0.6 * {u(10)})::numeric, 2)
               WHEN 'written_off' THEN round(total_amount * (0.5 * {u(10)})::numeric, 2)
               ELSE 0
           END AS amount_paid,
           CASE WHEN status = 'paid' THEN payment END AS paid_at
    FROM (
        SELECT *,
               CASE WHEN issue_date >= {ANCHOR_DATE} THEN 'draft'
                    WHEN status0 = 'paid' AND payment > %(anchor)s THEN 'issued'
                    ELSE status0 END AS status,
               least({local_time(f"issue_date - floor(3 * {u(11)})::int", 8, 10, u(11))},
                     %(anchor)s::timestamptz) AS created_at
        FROM (
            SELECT *,
                   {local_time(f"issue_date + (1 + floor(119 * power({u(8)}, 1.8)))::int", 9, 8, u(9))}
                       AS payment,
                   CASE WHEN g > 6 AND status1 IN ('issued', 'part_paid')
                             AND issue_date < {ANCHOR_DATE} - 60 AND {u(7)} < 0.85
                        THEN 'paid'
                        WHEN g > 6 AND status1 = 'draft'
                             AND issue_date < {ANCHOR_DATE} - 30 AND {u(7)} < 0.9
                        THEN 'paid'
                        ELSE status1 END AS status0
            FROM (
                SELECT g, h1, h2, h3, quote_id,
                       coalesce(q_customer, {customer_id(CUSTOMER)}) AS customer_id,
                       CASE WHEN quote_id IS NOT NULL THEN q_project
                            WHEN {u(4)} >= 0.15
                            THEN {project_id(CUSTOMER, f"1 + floor({u(5)} * {project_count(CUSTOMER)})")}
                       END AS project_id,
                       coalesce(q_currency, {CURRENCY.format(u=u(6))}) AS currency,
                       coalesce(q_amount, {log_uniform(f"({u(2)} + {u(3)}) / 2", 150, 80000)})
                           AS total_amount,
                       coalesce((q_decided AT TIME ZONE %(tz)s)::date + 1 + floor(20 * {u(1)})::int,
                                {working_day(timeline_position(u(1)))}) AS issue_date,
                       (ARRAY[15, 30, 30, 30, 30, 45, 60])[1 + floor(7 * {u(12)})::int] AS terms,
                       {weighted_choice(INVOICE_STATUS_WEIGHTS, u(13), cover="g")} AS status1
                FROM (
                    SELECT g, {row_hashes("invoices", 4)},
                           q.id AS quote_id, q.customer_id AS q_customer,
                           q.project_id AS q_project, q.currency AS q_currency,
                           q.total_amount AS q_amount, q.decided_at AS q_decided
                    FROM generate_series(%(g_from)s::int, %(g_to)s::int) AS g
                    LEFT JOIN quotes AS q
                        ON q.organization_id = %(org)s AND q.id = {row_id("quo")}
                        AND q.status = 'accepted'
                    OFFSET 0
                ) AS joined OFFSET 0
            ) AS drawn OFFSET 0
        ) AS timed OFFSET 0
    ) AS settled
) AS invoices
"""  # noqa: S608 -- reviewed: constants only, values are bound
