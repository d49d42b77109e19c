"""Postgres schema: numbered migrations recorded in schema_migrations, applied under an advisory lock."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import asyncpg

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key shared by every bananabot process: migrators of one database take turns.
MIGRATION_LOCK = 0x62616E616E61  # "banana"
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# (version, description, sql). Append only; never edit a step that has shipped.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "sessions, turns, blobs, quota ledger, policies, grants, seen events, thread leases",
        """
        CREATE TABLE sessions (
            id text PRIMARY KEY,
            seq bigint GENERATED ALWAYS AS IDENTITY,  -- insertion order: newest first among equal created_at
            thread_key text NOT NULL,
            created_by text NOT NULL,
            created_at timestamptz NOT NULL,
            ended_at timestamptz,
            head_turn_id text
        );
        CREATE UNIQUE INDEX sessions_one_active ON sessions (thread_key) WHERE ended_at IS NULL;
        CREATE INDEX sessions_by_creator ON sessions (created_by, created_at);

        CREATE TABLE turns (
            id text PRIMARY KEY,
            session_id text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            parent_id text REFERENCES turns (id) ON DELETE SET NULL,
            kind text NOT NULL,
            user_key text NOT NULL,
            user_name text NOT NULL,
            prompt text NOT NULL,
            model text NOT NULL,
            aspect_ratio text,
            image_size text,
            request_json text NOT NULL,  -- text, not jsonb: thought signatures must survive byte for byte
            created_at timestamptz NOT NULL,
            status text NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
            response_json text,
            outcome text NOT NULL DEFAULT '',
            outcome_detail text NOT NULL DEFAULT '',
            prompt_tokens integer NOT NULL DEFAULT 0,
            candidate_tokens integer NOT NULL DEFAULT 0,
            thought_tokens integer NOT NULL DEFAULT 0,
            cost_usd double precision NOT NULL DEFAULT 0,
            credits integer NOT NULL DEFAULT 0,
            finished_at timestamptz
        );
        CREATE INDEX turns_by_session ON turns (session_id, created_at);
        CREATE INDEX turns_by_parent ON turns (parent_id);
        CREATE INDEX turns_pending ON turns (created_at) WHERE status = 'pending';

        -- Images live in the database so every replica sees them.
        CREATE TABLE blobs (
            sha256 text PRIMARY KEY,
            mime text NOT NULL,
            size integer NOT NULL,
            data bytea NOT NULL,
            touched_at timestamptz NOT NULL  -- last put_blob: purge spares a blob put just before its turn is written
        );

        CREATE TABLE turn_blobs (
            turn_id text NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
            sha256 text NOT NULL,
            PRIMARY KEY (turn_id, sha256)
        );
        CREATE INDEX turn_blobs_by_sha ON turn_blobs (sha256);

        CREATE TABLE reservations (
            id text PRIMARY KEY,
            user_key text NOT NULL,
            workspace_id text NOT NULL,
            credits integer NOT NULL,
            usd double precision NOT NULL,
            actual_usd double precision,
            day text NOT NULL,
            month text NOT NULL,
            state text NOT NULL CHECK (state IN ('held', 'committed', 'refunded')),
            owner text NOT NULL,
            created_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            settled_at timestamptz
        );
        CREATE INDEX reservations_by_state ON reservations (state, expires_at);
        CREATE INDEX reservations_by_owner ON reservations (owner) WHERE state = 'held';

        CREATE TABLE usage_counters (
            scope text NOT NULL,
            period text NOT NULL,
            credits integer NOT NULL DEFAULT 0,
            usd double precision NOT NULL DEFAULT 0,
            PRIMARY KEY (scope, period)
        );

        CREATE TABLE user_policies (
            user_key text PRIMARY KEY,
            daily_credits integer,
            monthly_credits integer,
            exempt boolean NOT NULL DEFAULT false,
            blocked boolean NOT NULL DEFAULT false
        );

        CREATE TABLE grants (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            user_key text NOT NULL,
            day text NOT NULL,
            month text NOT NULL,
            credits integer NOT NULL,
            granted_by text NOT NULL,
            created_at timestamptz NOT NULL
        );
        CREATE INDEX grants_by_user ON grants (user_key, month, day);

        CREATE TABLE seen_events (
            event_id text PRIMARY KEY,
            seen_at timestamptz NOT NULL
        );
        CREATE INDEX seen_events_by_time ON seen_events (seen_at);

        CREATE TABLE thread_leases (
            thread_key text PRIMARY KEY,
            owner text NOT NULL,
            expires_at timestamptz NOT NULL
        );
        """,
    ),
    (
        2,
        "ledger counters spread over shards; reserve, settle and bump as one-call functions",
        """
        -- A counter is the sum of its rows. Shard 0 is the row a limit check locks; the shared counters
        -- (workspace, global) take their increments on shards 1-64, one per connection, so reservations that no
        -- budget checks do not queue on one hot row. A user's counters stay on shard 0 alone (exact, clamped at 0).
        ALTER TABLE usage_counters RENAME TO usage_shards;
        ALTER TABLE usage_shards ADD COLUMN shard smallint NOT NULL DEFAULT 0;
        ALTER TABLE usage_shards DROP CONSTRAINT usage_counters_pkey;
        ALTER TABLE usage_shards ADD CONSTRAINT usage_shards_pkey PRIMARY KEY (scope, period, shard);
        CREATE VIEW usage_counters AS
        SELECT scope, period, SUM(credits) AS credits, GREATEST(SUM(usd), 0) AS usd
        FROM usage_shards GROUP BY scope, period;

        -- Lock order, for every transaction: reservation rows, then shard-0 rows by (scope, period), then the
        -- other shards by (scope, period, shard), all under the "C" collation. Nothing waits in the wrong order.

        -- Add to counters: a user's on shard 0, never below zero; shared ones on this connection's shard.
        -- Keys must be distinct. Takes the row locks in the order above.
        CREATE FUNCTION ledger_bump(p_scopes text[], p_periods text[], p_credits integer[], p_usd double precision[])
        RETURNS void LANGUAGE sql AS $$
            INSERT INTO usage_shards AS c (scope, period, shard, credits, usd)
            SELECT k.scope, k.period, k.shard, k.credits, k.usd
            FROM (
                SELECT u.scope, u.period, u.credits, u.usd,
                    (CASE WHEN u.scope LIKE 'user:%' THEN 0 ELSE 1 + pg_backend_pid() % 64 END)::smallint AS shard
                FROM unnest(p_scopes, p_periods, p_credits, p_usd) AS u(scope, period, credits, usd)
            ) AS k
            ORDER BY k.shard > 0, k.scope COLLATE "C", k.period COLLATE "C", k.shard
            ON CONFLICT (scope, period, shard) DO UPDATE SET
                credits = CASE WHEN c.shard = 0 THEN GREATEST(c.credits + excluded.credits, 0)
                    ELSE c.credits + excluded.credits END,
                usd = CASE WHEN c.shard = 0 THEN GREATEST(c.usd + excluded.usd, 0.0) ELSE c.usd + excluded.usd END;
            -- A user row that did not exist took the raw amount: clamp it too (it is locked already: no new wait).
            UPDATE usage_shards SET credits = GREATEST(credits, 0), usd = GREATEST(usd, 0.0)
            WHERE shard = 0 AND (credits < 0 OR usd < 0)
                AND (scope, period) IN (SELECT * FROM unnest(p_scopes, p_periods));
        $$;

        -- Check a reservation against the limits given (NULL: none) and hold it, in one call. Only the counters
        -- with a limit are locked: the user's two, and the workspace's and the global one when they have a budget.
        -- granted is false when a limit would be crossed; the totals say which (bot.store.ledger_rules.refusal).
        CREATE FUNCTION ledger_reserve(
            p_id text, p_user_key text, p_workspace_id text, p_credits integer, p_usd double precision,
            p_day text, p_month text, p_owner text, p_now timestamptz, p_expires_at timestamptz,
            p_daily_credits bigint, p_monthly_credits bigint, p_user_monthly_usd double precision,
            p_workspace_daily_usd double precision, p_global_daily_usd double precision,
            OUT granted boolean, OUT day_credits bigint, OUT month_credits bigint, OUT month_usd double precision,
            OUT workspace_usd double precision, OUT global_usd double precision
        ) LANGUAGE plpgsql AS $$
        DECLARE
            user_scope constant text := 'user:' || p_user_key;
            workspace_scope constant text := 'workspace:' || p_workspace_id;
            my_shard constant smallint := 1 + pg_backend_pid() % 64;
        BEGIN
            -- Take (creating when missing) the shard-0 rows of the checked counters, in the lock order
            -- ('global' < 'user:' < 'workspace:', a month before its days). A user's rows hold their totals.
            WITH locked AS (
                INSERT INTO usage_shards AS c (scope, period, shard)
                SELECT k.scope, k.period, 0
                FROM (VALUES
                    (1, 'global', p_day, p_global_daily_usd IS NOT NULL),
                    (2, user_scope, p_month, true),
                    (3, user_scope, p_day, true),
                    (4, workspace_scope, p_day, p_workspace_daily_usd IS NOT NULL)
                ) AS k(n, scope, period, checked)
                WHERE k.checked
                ORDER BY k.n
                ON CONFLICT (scope, period, shard) DO UPDATE SET credits = c.credits
                RETURNING c.scope, c.period, c.credits, c.usd
            )
            SELECT
                COALESCE(MAX(l.credits) FILTER (WHERE l.scope = user_scope AND l.period = p_day), 0),
                COALESCE(MAX(l.credits) FILTER (WHERE l.scope = user_scope AND l.period = p_month), 0),
                COALESCE(MAX(l.usd) FILTER (WHERE l.scope = user_scope AND l.period = p_month), 0)
            INTO day_credits, month_credits, month_usd
            FROM locked AS l;
            workspace_usd := 0;
            global_usd := 0;
            IF p_workspace_daily_usd IS NOT NULL OR p_global_daily_usd IS NOT NULL THEN
                -- A new statement, so a new snapshot: it counts every shard committed before the locks were ours.
                SELECT
                    GREATEST(COALESCE(SUM(s.usd) FILTER (WHERE s.scope = workspace_scope), 0), 0),
                    GREATEST(COALESCE(SUM(s.usd) FILTER (WHERE s.scope = 'global'), 0), 0)
                INTO workspace_usd, global_usd
                FROM usage_shards AS s
                WHERE s.period = p_day AND s.scope IN (workspace_scope, 'global');
            END IF;
            -- The same test as ledger_rules.refusal: refused when used + wanted > limit.
            granted := NOT (
                COALESCE(day_credits + p_credits > p_daily_credits, false)
                OR COALESCE(month_credits + p_credits > p_monthly_credits, false)
                OR COALESCE(month_usd + p_usd > p_user_monthly_usd, false)
                OR COALESCE(workspace_usd + p_usd > p_workspace_daily_usd, false)
                OR COALESCE(global_usd + p_usd > p_global_daily_usd, false)
            );
            IF NOT granted THEN
                RETURN;
            END IF;
            INSERT INTO reservations
                (id, user_key, workspace_id, credits, usd, day, month, state, owner, created_at, expires_at)
            VALUES
                (p_id, p_user_key, p_workspace_id, p_credits, p_usd, p_day, p_month, 'held', p_owner, p_now,
                p_expires_at);
            -- The user's rows are ours already; the shared counters move on this connection's shard.
            INSERT INTO usage_shards AS c (scope, period, shard, credits, usd) VALUES
                (user_scope, p_month, 0, p_credits, p_usd),
                (user_scope, p_day, 0, p_credits, p_usd),
                ('global', p_day, my_shard, p_credits, p_usd),
                (workspace_scope, p_day, my_shard, p_credits, p_usd)
            ON CONFLICT (scope, period, shard) DO UPDATE SET credits = c.credits + p_credits, usd = c.usd + p_usd;
        END
        $$;

        -- Commit (p_refund false) or refund a held reservation, against the periods it was made in, in one call.
        -- usd becomes the actual cost; a refund gives the credits back. False when it is not held (anymore).
        CREATE FUNCTION ledger_settle(p_id text, p_refund boolean, p_usd double precision, p_now timestamptz)
        RETURNS boolean LANGUAGE plpgsql AS $$
        DECLARE
            r record;
            moved_credits integer;
            moved_usd double precision;
            my_shard constant smallint := 1 + pg_backend_pid() % 64;
        BEGIN
            UPDATE reservations
            SET state = CASE WHEN p_refund THEN 'refunded' ELSE 'committed' END, actual_usd = p_usd,
                settled_at = p_now
            WHERE id = p_id AND state = 'held'
            RETURNING user_key, workspace_id, credits, usd, day, month INTO r;
            IF NOT FOUND THEN
                RETURN false;
            END IF;
            moved_credits := CASE WHEN p_refund THEN -r.credits ELSE 0 END;
            moved_usd := p_usd - r.usd;
            IF moved_credits = 0 AND moved_usd = 0 THEN
                RETURN true;
            END IF;
            -- Lock order: the user's shard-0 rows (month, day), then this connection's shards of the shared ones.
            INSERT INTO usage_shards AS c (scope, period, shard, credits, usd) VALUES
                ('user:' || r.user_key, r.month, 0, GREATEST(moved_credits, 0), GREATEST(moved_usd, 0.0)),
                ('user:' || r.user_key, r.day, 0, GREATEST(moved_credits, 0), GREATEST(moved_usd, 0.0)),
                ('global', r.day, my_shard, moved_credits, moved_usd),
                ('workspace:' || r.workspace_id, r.day, my_shard, moved_credits, moved_usd)
            ON CONFLICT (scope, period, shard) DO UPDATE SET
                credits = CASE WHEN c.shard = 0 THEN GREATEST(c.credits + moved_credits, 0)
                    ELSE c.credits + moved_credits END,
                usd = CASE WHEN c.shard = 0 THEN GREATEST(c.usd + moved_usd, 0.0) ELSE c.usd + moved_usd END;
            RETURN true;
        END
        $$;
        """,
    ),
    (
        3,
        "ledger batches: many reservations or settlements in one call and one transaction",
        """
        -- Concurrent calls share a round trip and a commit (bot/store/postgres_batch.py). A batch takes its locks
        -- first, in the lock order of migration 2, then decides its calls one by one, in order, on running totals
        -- (each call sees those before it, exactly as a run of ledger_reserve / ledger_settle calls would), and
        -- writes once: a user row gets its final value, a shared counter one increment on this connection's shard.
        -- Counter keys in the running-total arrays are scope || chr(31) || period.
        CREATE FUNCTION ledger_reserve_batch(
            p_ids text[], p_user_keys text[], p_workspace_ids text[], p_credits integer[], p_usd double precision[],
            p_days text[], p_months text[], p_owners text[], p_nows timestamptz[], p_expires_at timestamptz[],
            p_daily_credits bigint[], p_monthly_credits bigint[], p_user_monthly_usd double precision[],
            p_workspace_daily_usd double precision[], p_global_daily_usd double precision[]
        ) RETURNS TABLE (
            granted boolean, day_credits bigint, month_credits bigint, month_usd double precision,
            workspace_usd double precision, global_usd double precision
        ) LANGUAGE plpgsql AS $$
        DECLARE
            my_shard constant smallint := 1 + pg_backend_pid() % 64;
            sep constant text := chr(31);
            keys text[];
            scopes text[];
            periods text[];
            totals_credits bigint[];
            totals_usd double precision[];
            ok boolean[] := '{}';
            d integer;
            m integer;
            w integer;
            g integer;
        BEGIN
            -- Shard 0 of every checked counter: each user's two, and the budgeted shared ones.
            WITH locked AS (
                INSERT INTO usage_shards AS c (scope, period, shard)
                SELECT k.scope, k.period, 0
                FROM (
                    SELECT DISTINCT r.scope, r.period
                    FROM unnest(p_user_keys, p_workspace_ids, p_days, p_months, p_workspace_daily_usd,
                        p_global_daily_usd) AS i(user_key, workspace_id, day, month, workspace_budget, global_budget)
                    CROSS JOIN LATERAL (VALUES
                        ('user:' || i.user_key, i.month, true),
                        ('user:' || i.user_key, i.day, true),
                        ('workspace:' || i.workspace_id, i.day, i.workspace_budget IS NOT NULL),
                        ('global', i.day, i.global_budget IS NOT NULL)
                    ) AS r(scope, period, needed)
                    WHERE r.needed
                ) AS k
                ORDER BY k.scope COLLATE "C", k.period COLLATE "C"
                ON CONFLICT (scope, period, shard) DO UPDATE SET credits = c.credits
                RETURNING c.scope, c.period, c.credits, c.usd
            )
            SELECT array_agg(l.scope || sep || l.period), array_agg(l.scope), array_agg(l.period),
                array_agg(l.credits::bigint), array_agg(l.usd)
            INTO keys, scopes, periods, totals_credits, totals_usd
            FROM locked AS l;
            -- A budgeted shared counter counts every shard: read them now that its row 0 is ours.
            SELECT array_agg(COALESCE(t.total, u.usd) ORDER BY u.n) INTO totals_usd
            FROM unnest(scopes, periods, totals_usd) WITH ORDINALITY AS u(scope, period, usd, n)
            LEFT JOIN LATERAL (
                SELECT GREATEST(SUM(s.usd), 0) AS total FROM usage_shards AS s
                WHERE s.scope = u.scope AND s.period = u.period
            ) AS t ON u.scope NOT LIKE 'user:%';
            FOR n IN 1 .. coalesce(cardinality(p_ids), 0) LOOP
                d := array_position(keys, 'user:' || p_user_keys[n] || sep || p_days[n]);
                m := array_position(keys, 'user:' || p_user_keys[n] || sep || p_months[n]);
                w := array_position(keys, 'workspace:' || p_workspace_ids[n] || sep || p_days[n]);
                g := array_position(keys, 'global' || sep || p_days[n]);
                day_credits := totals_credits[d];
                month_credits := totals_credits[m];
                month_usd := totals_usd[m];
                workspace_usd := COALESCE(totals_usd[w], 0);
                global_usd := COALESCE(totals_usd[g], 0);
                -- The same test as ledger_rules.refusal: refused when used + wanted > limit.
                granted := NOT (
                    COALESCE(day_credits + p_credits[n] > p_daily_credits[n], false)
                    OR COALESCE(month_credits + p_credits[n] > p_monthly_credits[n], false)
                    OR COALESCE(month_usd + p_usd[n] > p_user_monthly_usd[n], false)
                    OR COALESCE(workspace_usd + p_usd[n] > p_workspace_daily_usd[n], false)
                    OR COALESCE(global_usd + p_usd[n] > p_global_daily_usd[n], false)
                );
                IF granted THEN
                    totals_credits[d] := totals_credits[d] + p_credits[n];
                    totals_credits[m] := totals_credits[m] + p_credits[n];
                    totals_usd[d] := totals_usd[d] + p_usd[n];
                    totals_usd[m] := totals_usd[m] + p_usd[n];
                    IF w IS NOT NULL THEN
                        totals_usd[w] := totals_usd[w] + p_usd[n];
                    END IF;
                    IF g IS NOT NULL THEN
                        totals_usd[g] := totals_usd[g] + p_usd[n];
                    END IF;
                END IF;
                ok := ok || granted;
                RETURN NEXT;
            END LOOP;
            INSERT INTO reservations
                (id, user_key, workspace_id, credits, usd, day, month, state, owner, created_at, expires_at)
            SELECT i.id, i.user_key, i.workspace_id, i.credits, i.usd, i.day, i.month, 'held', i.owner, i.now,
                i.expires_at
            FROM unnest(p_ids, p_user_keys, p_workspace_ids, p_credits, p_usd, p_days, p_months, p_owners, p_nows,
                p_expires_at, ok) AS i(id, user_key, workspace_id, credits, usd, day, month, owner, now, expires_at, ok)
            WHERE i.ok;
            UPDATE usage_shards AS s SET credits = t.credits, usd = t.usd
            FROM unnest(scopes, periods, totals_credits, totals_usd) AS t(scope, period, credits, usd)
            WHERE t.scope LIKE 'user:%' AND s.scope = t.scope AND s.period = t.period AND s.shard = 0
                AND (s.credits <> t.credits OR s.usd <> t.usd);
            INSERT INTO usage_shards AS c (scope, period, shard, credits, usd)
            SELECT k.scope, k.period, my_shard, SUM(k.credits), SUM(k.usd)
            FROM (
                SELECT r.scope, i.day AS period, i.credits, i.usd
                FROM unnest(p_workspace_ids, p_days, p_credits, p_usd, ok) AS i(workspace_id, day, credits, usd, ok)
                CROSS JOIN LATERAL (VALUES ('workspace:' || i.workspace_id), ('global')) AS r(scope)
                WHERE i.ok
            ) AS k
            GROUP BY k.scope, k.period
            ORDER BY k.scope COLLATE "C", k.period COLLATE "C"
            ON CONFLICT (scope, period, shard) DO UPDATE SET credits = c.credits + excluded.credits,
                usd = c.usd + excluded.usd;
        END
        $$;

        CREATE FUNCTION ledger_settle_batch(
            p_ids text[], p_refunds boolean[], p_usd double precision[], p_nows timestamptz[]
        ) RETURNS SETOF boolean LANGUAGE plpgsql AS $$
        DECLARE
            my_shard constant smallint := 1 + pg_backend_pid() % 64;
            sep constant text := chr(31);
            held_ids text[];
            held_users text[];
            held_workspaces text[];
            held_credits integer[];
            held_usd double precision[];
            held_days text[];
            held_months text[];
            done boolean[];
            settled boolean[] := '{}';
            moved_credits integer[] := '{}';
            moved_usd double precision[] := '{}';
            at integer[] := '{}';
            keys text[];
            scopes text[];
            periods text[];
            totals_credits bigint[];
            totals_usd double precision[];
            h integer;
            d integer;
            m integer;
        BEGIN
            PERFORM FROM reservations WHERE id = ANY(p_ids) AND state = 'held' ORDER BY id FOR UPDATE;
            SELECT array_agg(r.id), array_agg(r.user_key), array_agg(r.workspace_id), array_agg(r.credits),
                array_agg(r.usd), array_agg(r.day), array_agg(r.month)
            INTO held_ids, held_users, held_workspaces, held_credits, held_usd, held_days, held_months
            FROM reservations AS r WHERE r.id = ANY(p_ids) AND r.state = 'held';
            done := array_fill(false, ARRAY[coalesce(cardinality(held_ids), 0)]);
            -- Which calls settle (the first one per held reservation) and what they move.
            FOR n IN 1 .. coalesce(cardinality(p_ids), 0) LOOP
                h := array_position(held_ids, p_ids[n]);
                IF h IS NULL OR done[h] THEN
                    settled := settled || false;
                    at := at || 0;
                    moved_credits := moved_credits || 0;
                    moved_usd := moved_usd || 0.0::double precision;
                ELSE
                    done[h] := true;
                    settled := settled || true;
                    at := at || h;
                    moved_credits := moved_credits || CASE WHEN p_refunds[n] THEN -held_credits[h] ELSE 0 END;
                    moved_usd := moved_usd || (p_usd[n] - held_usd[h]);
                END IF;
            END LOOP;
            UPDATE reservations AS r
            SET state = CASE WHEN c.refund THEN 'refunded' ELSE 'committed' END, actual_usd = c.usd,
                settled_at = c.now
            FROM unnest(p_ids, p_refunds, p_usd, p_nows, settled) AS c(id, refund, usd, now, settled)
            WHERE c.settled AND r.id = c.id;
            -- The users' rows of the calls that move anything, locked in order; their values are the totals.
            WITH locked AS (
                INSERT INTO usage_shards AS c (scope, period, shard)
                SELECT k.scope, k.period, 0
                FROM (
                    SELECT DISTINCT r.scope, r.period
                    FROM unnest(at, moved_credits, moved_usd) AS i(h, credits, usd)
                    CROSS JOIN LATERAL (VALUES
                        ('user:' || held_users[i.h], held_months[i.h]),
                        ('user:' || held_users[i.h], held_days[i.h])
                    ) AS r(scope, period)
                    WHERE i.h > 0 AND (i.credits <> 0 OR i.usd <> 0)
                ) AS k
                ORDER BY k.scope COLLATE "C", k.period COLLATE "C"
                ON CONFLICT (scope, period, shard) DO UPDATE SET credits = c.credits
                RETURNING c.scope, c.period, c.credits, c.usd
            )
            SELECT array_agg(l.scope || sep || l.period), array_agg(l.scope), array_agg(l.period),
                array_agg(l.credits::bigint), array_agg(l.usd)
            INTO keys, scopes, periods, totals_credits, totals_usd
            FROM locked AS l;
            -- In call order, as separate calls would: a user's counters never go below zero.
            FOR n IN 1 .. coalesce(cardinality(p_ids), 0) LOOP
                IF settled[n] AND (moved_credits[n] <> 0 OR moved_usd[n] <> 0) THEN
                    h := at[n];
                    d := array_position(keys, 'user:' || held_users[h] || sep || held_days[h]);
                    m := array_position(keys, 'user:' || held_users[h] || sep || held_months[h]);
                    totals_credits[d] := GREATEST(totals_credits[d] + moved_credits[n], 0);
                    totals_credits[m] := GREATEST(totals_credits[m] + moved_credits[n], 0);
                    totals_usd[d] := GREATEST(totals_usd[d] + moved_usd[n], 0.0);
                    totals_usd[m] := GREATEST(totals_usd[m] + moved_usd[n], 0.0);
                END IF;
            END LOOP;
            UPDATE usage_shards AS s SET credits = t.credits, usd = t.usd
            FROM unnest(scopes, periods, totals_credits, totals_usd) AS t(scope, period, credits, usd)
            WHERE s.scope = t.scope AND s.period = t.period AND s.shard = 0
                AND (s.credits <> t.credits OR s.usd <> t.usd);
            INSERT INTO usage_shards AS c (scope, period, shard, credits, usd)
            SELECT k.scope, k.period, my_shard, SUM(k.credits), SUM(k.usd)
            FROM (
                SELECT r.scope, held_days[i.h] AS period, i.credits, i.usd
                FROM unnest(at, moved_credits, moved_usd) AS i(h, credits, usd)
                CROSS JOIN LATERAL (VALUES ('workspace:' || held_workspaces[i.h]), ('global')) AS r(scope)
                WHERE i.h > 0 AND (i.credits <> 0 OR i.usd <> 0)
            ) AS k
            GROUP BY k.scope, k.period
            ORDER BY k.scope COLLATE "C", k.period COLLATE "C"
            ON CONFLICT (scope, period, shard) DO UPDATE SET credits = c.credits + excluded.credits,
                usd = c.usd + excluded.usd;
            RETURN QUERY SELECT unnest(settled);
        END
        $$;
        """,
    ),
    (
        4,
        "turns record the process running them: recovery fails only the turns of processes that died",
        """
        -- NULL for turns written before this step.
        ALTER TABLE turns ADD COLUMN owner text;
        CREATE INDEX turns_pending_by_owner ON turns (owner) WHERE status = 'pending';
        """,
    ),
    (
        5,
        "ledger settles plan each call: reservation lookups go through the primary key however the table grew",
        """
        -- plpgsql keeps a statement's generic plan for the life of the connection, until the table's statistics
        -- change. Planned while reservations was small (a new database, or before autoanalyze caught up), the
        -- settle batch's UPDATE kept a sequential scan and its lookups a scan of every held entry of the state
        -- indexes, dead ones included: each settle read the whole table, slower with every reservation made.
        -- Settling now plans its statements for the ids it is given (a custom plan), by the primary key.
        CREATE OR REPLACE FUNCTION ledger_settle_batch(
            p_ids text[], p_refunds boolean[], p_usd double precision[], p_nows timestamptz[]
        ) RETURNS SETOF boolean LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
        DECLARE
            my_shard constant smallint := 1 + pg_backend_pid() % 64;
            sep constant text := chr(31);
            held_ids text[];
            held_users text[];
            held_workspaces text[];
            held_credits integer[];
            held_usd double precision[];
            held_days text[];
            held_months text[];
            done boolean[];
            settled boolean[] := '{}';
            moved_credits integer[] := '{}';
            moved_usd double precision[] := '{}';
            at integer[] := '{}';
            keys text[];
            scopes text[];
            periods text[];
            totals_credits bigint[];
            totals_usd double precision[];
            h integer;
            d integer;
            m integer;
        BEGIN
            -- Lock the held ones in id order and read them, in one statement that goes through the primary key. The
            -- state test is "not settled" rather than "= 'held'", which no index on state can serve: those indexes
            -- keep an entry for each settled row's held version until a vacuum. A row settled while this call
            -- waited for its lock is checked again, at its new version, and left out.
            SELECT array_agg(r.id), array_agg(r.user_key), array_agg(r.workspace_id), array_agg(r.credits),
                array_agg(r.usd), array_agg(r.day), array_agg(r.month)
            INTO held_ids, held_users, held_workspaces, held_credits, held_usd, held_days, held_months
            FROM (
                SELECT id, user_key, workspace_id, credits, usd, day, month FROM reservations
                WHERE id = ANY(p_ids) AND state NOT IN ('committed', 'refunded')
                ORDER BY id FOR UPDATE
            ) AS r;
            done := array_fill(false, ARRAY[coalesce(cardinality(held_ids), 0)]);
            -- Which calls settle (the first one per held reservation) and what they move.
            FOR n IN 1 .. coalesce(cardinality(p_ids), 0) LOOP
                h := array_position(held_ids, p_ids[n]);
                IF h IS NULL OR done[h] THEN
                    settled := settled || false;
                    at := at || 0;
                    moved_credits := moved_credits || 0;
                    moved_usd := moved_usd || 0.0::double precision;
                ELSE
                    done[h] := true;
                    settled := settled || true;
                    at := at || h;
                    moved_credits := moved_credits || CASE WHEN p_refunds[n] THEN -held_credits[h] ELSE 0 END;
                    moved_usd := moved_usd || (p_usd[n] - held_usd[h]);
                END IF;
            END LOOP;
            UPDATE reservations AS r
            SET state = CASE WHEN c.refund THEN 'refunded' ELSE 'committed' END, actual_usd = c.usd,
                settled_at = c.now
            FROM unnest(p_ids, p_refunds, p_usd, p_nows, settled) AS c(id, refund, usd, now, settled)
            WHERE c.settled AND r.id = c.id;
            -- The users' rows of the calls that move anything, locked in order; their values are the totals.
            WITH locked AS (
                INSERT INTO usage_shards AS c (scope, period, shard)
                SELECT k.scope, k.period, 0
                FROM (
                    SELECT DISTINCT r.scope, r.period
                    FROM unnest(at, moved_credits, moved_usd) AS i(h, credits, usd)
                    CROSS JOIN LATERAL (VALUES
                        ('user:' || held_users[i.h], held_months[i.h]),
                        ('user:' || held_users[i.h], held_days[i.h])
                    ) AS r(scope, period)
                    WHERE i.h > 0 AND (i.credits <> 0 OR i.usd <> 0)
                ) AS k
                ORDER BY k.scope COLLATE "C", k.period COLLATE "C"
                ON CONFLICT (scope, period, shard) DO UPDATE SET credits = c.credits
                RETURNING c.scope, c.period, c.credits, c.usd
            )
            SELECT array_agg(l.scope || sep || l.period), array_agg(l.scope), array_agg(l.period),
                array_agg(l.credits::bigint), array_agg(l.usd)
            INTO keys, scopes, periods, totals_credits, totals_usd
            FROM locked AS l;
            -- In call order, as separate calls would: a user's counters never go below zero.
            FOR n IN 1 .. coalesce(cardinality(p_ids), 0) LOOP
                IF settled[n] AND (moved_credits[n] <> 0 OR moved_usd[n] <> 0) THEN
                    h := at[n];
                    d := array_position(keys, 'user:' || held_users[h] || sep || held_days[h]);
                    m := array_position(keys, 'user:' || held_users[h] || sep || held_months[h]);
                    totals_credits[d] := GREATEST(totals_credits[d] + moved_credits[n], 0);
                    totals_credits[m] := GREATEST(totals_credits[m] + moved_credits[n], 0);
                    totals_usd[d] := GREATEST(totals_usd[d] + moved_usd[n], 0.0);
                    totals_usd[m] := GREATEST(totals_usd[m] + moved_usd[n], 0.0);
                END IF;
            END LOOP;
            UPDATE usage_shards AS s SET credits = t.credits, usd = t.usd
            FROM unnest(scopes, periods, totals_credits, totals_usd) AS t(scope, period, credits, usd)
            WHERE s.scope = t.scope AND s.period = t.period AND s.shard = 0
                AND (s.credits <> t.credits OR s.usd <> t.usd);
            INSERT INTO usage_shards AS c (scope, period, shard, credits, usd)
            SELECT k.scope, k.period, my_shard, SUM(k.credits), SUM(k.usd)
            FROM (
                SELECT r.scope, held_days[i.h] AS period, i.credits, i.usd
                FROM unnest(at, moved_credits, moved_usd) AS i(h, credits, usd)
                CROSS JOIN LATERAL (VALUES ('workspace:' || held_workspaces[i.h]), ('global')) AS r(scope)
                WHERE i.h > 0 AND (i.credits <> 0 OR i.usd <> 0)
            ) AS k
            GROUP BY k.scope, k.period
            ORDER BY k.scope COLLATE "C", k.period COLLATE "C"
            ON CONFLICT (scope, period, shard) DO UPDATE SET credits = c.credits + excluded.credits,
                usd = c.usd + excluded.usd;
            RETURN QUERY SELECT unnest(settled);
        END
        $$;

        ALTER FUNCTION ledger_settle(text, boolean, double precision, timestamptz)
            SET plan_cache_mode = force_custom_plan;
        """,
    ),
    (
        6,
        "images are stored without a compression attempt: PNG, JPEG and WebP are compressed already",
        """
        -- EXTENDED (the default) runs pglz over every image before storing it out of line: a third of the
        -- server's CPU for a 1.5 MB image (6.2 -> 4.0 ms per insert, measured), for no gain on PNG/JPEG/WebP.
        -- A catalog change only: rows already stored stay as they are.
        ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;
        """,
    ),
    (
        7,
        "a session's turn walks plan each call: they follow the primary key however the turns table grew",
        """
        -- The prepared walks were cached per connection like the settles of step 5: planned while turns was small
        -- (a new database, or before autoanalyze caught up), they kept a hash join over every turn, and with 200k
        -- turns each history took over a second instead of a millisecond (measured with autovacuum off). As
        -- functions that plan their body on each call (SET also keeps them from being inlined into the caller's
        -- cached plan), they go through turns_pkey.
        CREATE FUNCTION turn_ancestors(p_id text, p_limit integer) RETURNS SETOF turns
        LANGUAGE sql STABLE SET plan_cache_mode = force_custom_plan AS $$
            WITH RECURSIVE chain(id, depth) AS (
                SELECT id, 0 FROM turns WHERE id = p_id
                UNION ALL
                SELECT t.parent_id, chain.depth + 1 FROM turns t JOIN chain ON t.id = chain.id
                WHERE t.parent_id IS NOT NULL AND chain.depth + 1 < p_limit
            )
            SELECT turns.* FROM chain JOIN turns ON turns.id = chain.id ORDER BY chain.depth
        $$;
        -- UNION (not UNION ALL) stops on a cycle instead of looping forever.
        CREATE FUNCTION turn_root(p_id text) RETURNS SETOF turns
        LANGUAGE sql STABLE SET plan_cache_mode = force_custom_plan AS $$
            WITH RECURSIVE chain(id) AS (
                SELECT id FROM turns WHERE id = p_id
                UNION
                SELECT t.parent_id FROM turns t JOIN chain ON t.id = chain.id WHERE t.parent_id IS NOT NULL
            )
            SELECT turns.* FROM chain JOIN turns ON turns.id = chain.id WHERE turns.parent_id IS NULL LIMIT 1
        $$;
        """,
    ),
    (
        8,
        "retention finds what it deletes through indexes instead of reading every reservation, image and session",
        """
        -- Each purge (every minute on each process with retention on) scanned these tables whole: 124 ms with
        -- 200k reservations and 20k sessions, 1.5 ms with the indexes (measured). The expression is the one
        -- purge's dead-session test uses.
        CREATE INDEX reservations_settled ON reservations (settled_at) WHERE state <> 'held';
        CREATE INDEX blobs_by_touch ON blobs (touched_at);
        CREATE INDEX sessions_by_last_move ON sessions ((GREATEST(created_at, ended_at)));
        """,
    ),
)

LATEST = MIGRATIONS[-1][0]

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    description text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: the store only takes timezone-aware datetimes")
    return moment.astimezone(UTC)


def check_schema(schema: str) -> str:
    if not SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"schema name {schema!r} must be a lowercase SQL identifier ([a-z_][a-z0-9_]*, ≤ 63 chars)")
    return schema


async def current_version(conn: asyncpg.Connection) -> int:
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return 0
    return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))


async def migrate(conn: asyncpg.Connection, *, schema: str | None = None) -> int:
    """Apply pending steps, each in its own transaction under the advisory lock (concurrent openers take turns).

    With `schema`, the connection's search_path already names it; it is created here when missing.
    """
    if await current_version(conn) >= LATEST:
        return LATEST
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        # CREATE SCHEMA checks the database CREATE privilege even with IF NOT EXISTS: only ask when it is missing.
        if schema and await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema) is None:
            await conn.execute(f'CREATE SCHEMA "{check_schema(schema)}"')
        await conn.execute(_LEDGER)
    for version, description, sql in MIGRATIONS:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            if await current_version(conn) >= version:  # another process won the race
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)", version, description
            )
            log.info("store schema migrated to version %d: %s", version, description)
    return await current_version(conn)
