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
