"""Time entries, one set-based INSERT (see sales.py for the ``OFFSET 0`` staging)."""

from __future__ import annotations

from pivotal_reporting.demo.people import staff_user_id_sql
from pivotal_reporting.demo.random_sql import (
    customer_pick,
    local_time,
    pick_word,
    project_count,
    project_id,
    row_hashes,
    row_id,
    timeline_position,
    uniform,
    weighted_choice,
    working_day,
)
from pivotal_reporting.demo.sales import ANCHOR_DATE

u = uniform

TIME_ENTRY_STATUS_WEIGHTS = (
    ("approved", 72),
    ("rejected", 6),
    ("submitted", 14),
    ("draft", 8),
)
CUSTOMER = customer_pick(u(0))

# Entries of 0.25-10 hours (quarter hours, mostly short) on working days, by a staff
# member, submitted that evening or up to a week later, approved or rejected by a manager
# other than its author after 30 minutes to 14 days. Entries older than three weeks were
# mostly decided since; a step that would fall after the anchor has not happened yet.
INSERT_TIME_ENTRIES = f"""
INSERT INTO time_entries (id, organization_id, user_id, project_id, work_date, hours, billable,
                          status, description, submitted_at, approved_at, approved_by,
                          rejected_at, created_at, updated_at)
SELECT {row_id("te")}, %(org)s, {staff_user_id_sql("author")}, project_id, work_date, hours,
       billable, status, description,
       submitted_at, approved_at,
       CASE WHEN status = 'approved' THEN {staff_user_id_sql("approver")} END,
       rejected_at, created_at,
       coalesce(approved_at, rejected_at, submitted_at, created_at)
FROM (
    SELECT *,
           CASE WHEN status <> 'draft' THEN submission END AS submitted_at,
           CASE WHEN status = 'approved' THEN decision END AS approved_at,
           CASE WHEN status = 'rejected' THEN decision END AS rejected_at
    FROM (
        SELECT *,
               CASE WHEN status0 = 'draft' OR submission > %(anchor)s THEN 'draft'
                    WHEN status0 IN ('approved', 'rejected') AND decision > %(anchor)s
                        THEN 'submitted'
                    ELSE status0 END AS status
        FROM (
            SELECT *,
                   submission + interval '1 hour' * (0.5 + 335.5 * power({u(12)}, 2.5))
                       AS decision
            FROM (
                SELECT *,
                       {local_time(f"work_date + floor(7 * power({u(6)}, 3))::int", 16, 4, u(7))}
                           AS submission,
                       {local_time("work_date", 8, 8, u(8))} AS created_at,
                       CASE WHEN g > 4 AND status1 IN ('draft', 'submitted')
                                 AND work_date < {ANCHOR_DATE} - 21 AND {u(9)} < 0.9
                            THEN 'approved' ELSE status1 END AS status0
                FROM (
                    SELECT g, h1, h2, h3, h4, author,
                           CASE WHEN approver0 = author THEN 1 + mod(approver0, %(managers)s)
                                ELSE approver0 END AS approver,
                           {project_id(CUSTOMER, f"1 + floor({u(2)} * {project_count(CUSTOMER)})")}
                               AS project_id,
                           {working_day(timeline_position(u(3)))} AS work_date,
                           (0.25 * (1 + floor(40 * power({u(4)}, 1.3))))::numeric(6, 2) AS hours,
                           {u(5)} < 0.78 AS billable,
                           {pick_word("activity_words", "(h4 >> 48) & 65535")} AS description,
                           {weighted_choice(TIME_ENTRY_STATUS_WEIGHTS, u(10), cover="g")}
                               AS status1
                    FROM (
                        SELECT *, 1 + floor({u(1)} * %(staff)s)::int AS author,
                               1 + floor({u(11)} * %(managers)s)::int AS approver0
                        FROM (
                            SELECT g, {row_hashes("time_entries", 4)}
                            FROM generate_series(%(g_from)s::int, %(g_to)s::int) AS g OFFSET 0
                        ) AS hashed
                    ) AS people OFFSET 0
                ) AS drawn OFFSET 0
            ) AS timed OFFSET 0
        ) AS decided OFFSET 0
    ) AS settled
) AS entries
"""  # noqa: S608 -- reviewed: constants only, values are bound
