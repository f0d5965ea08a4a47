"""The hub's settings, read once from the environment at start."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import make_url

from adapters.base import DEFAULT_POOL, SourceBudget
from adapters.registry import DEFAULT_AGENCIES
from adapters.spec import AgencySpec
from audit.witness import WITNESS_FILE
from clock import SYSTEM_CLOCK, Clock
from domain.limits import Limits
from domain.records import SHANGHAI, AgencyId
from keys.data_dir import sqlite_files

PROJECT_ROOT = Path(__file__).resolve().parent


def default_budgets(agencies: Sequence[AgencySpec] = DEFAULT_AGENCIES) -> dict[AgencyId, SourceBudget]:
    return {spec.id: SourceBudget() for spec in agencies}


def budgets_from_environment(
    env: dict[str, str], agencies: Sequence[AgencySpec] = DEFAULT_AGENCIES
) -> dict[AgencyId, SourceBudget]:
    """HUB_SOURCE_TIMEOUT (2 s) or each agency's HUB_TIMEOUT_<NAME>_SECONDS, HUB_SOURCE_ATTEMPTS (3),
    HUB_BREAKER_FAILURES (5), HUB_BREAKER_PAUSE (10 s); anything unreadable stops the start."""
    default = SourceBudget()

    def number(name: str, fallback: float, minimum: float) -> float:
        text = env.get(name, "").strip()
        if not text:
            return fallback
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{name}: {text!r} is not a number") from None
        if not minimum <= value < float("inf"):
            raise ValueError(f"{name}: {text!r} is less than {minimum:g}")
        return value

    timeout = number("HUB_SOURCE_TIMEOUT", default.timeout or 2.0, 0.001)
    attempts = int(number("HUB_SOURCE_ATTEMPTS", default.attempts, 1))
    failures = int(number("HUB_BREAKER_FAILURES", default.breaker_failures, 1))
    pause = number("HUB_BREAKER_PAUSE", default.breaker_pause, 0.001)
    return {
        spec.id: SourceBudget(number(spec.timeout_variable, timeout, 0.001), attempts, failures, pause)
        for spec in agencies
    }


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@dataclass(frozen=True)
class Settings:
    """Where the databases, keys and policy are, what the hub's clock says, and its limits.

    >>> Settings.for_directory(Path("var")).source_urls["EXIT_ENTRY"]
    'sqlite+aiosqlite:///var/exit_entry.sqlite'
    """

    data_dir: Path
    source_urls: dict[AgencyId, str]
    store_url: str
    audit_url: str
    fixed_today: date | None = None
    # Where each signed checkpoint of the audit trail is copied to (audit/witness.py): a file
    # path or an SQLAlchemy URL; None: `audit-witness.jsonl` in the data directory.
    audit_witness: str | None = None
    policy_path: Path = PROJECT_ROOT / "policy.toml"
    limits: Limits = field(default_factory=Limits)
    # Only a benchmark turns the audit off, to measure what it costs; nothing else may.
    audit: bool = True
    # The planned path for leaf fields (schema/planned.py); off only in the differential test
    # and the benchmark, which compare it with graphql-core's field-by-field chain.
    planned: bool = True
    # HUB_TRUSTED_DOCUMENTS: the only documents each client may run (edge/documents.py); None:
    # any valid document, and automatic persisted queries.
    trusted_documents: Path | None = None
    # Per source: time budget, retries and circuit breaker (adapters/base.py, SourceGuard).
    source_budgets: dict[AgencyId, SourceBudget] = field(default_factory=default_budgets)
    # The agencies the hub joins (adapters/registry.py): each one's source is at source_urls[id].
    agencies: tuple[AgencySpec, ...] = DEFAULT_AGENCIES
    # Operations: the grace for in-flight requests and workflow runs on SIGTERM (seconds), each
    # readiness probe's bound (seconds), and the log level of the JSON logs.
    shutdown_grace: float = 10.0
    ready_timeout: float = 1.0
    log_level: str = "INFO"
    # The verification providers' public keys (a JWK Set, inline JSON or a file) whose
    # real-person attestations e-card registration accepts; none set accepts none.
    verifier_jwks: str | None = None
    # HUB_REDIS_URL: where all processes of one hub share their rate limits, persisted queries
    # and notification wake-ups; None: in this process only (then `hub run` serves one worker).
    redis_url: str | None = None
    # HUB_REDIS_PREFIX: the start of every key and channel of this hub in that Redis.
    redis_prefix: str = "hub:"
    # HUB_MAX_SUBSCRIPTIONS_PER_PERSON: live subscriptions one person may hold at once, over
    # every connection and process (notifications/seats.py).
    max_subscriptions_per_person: int = 10
    # HUB_SUBSCRIPTION_POLL: seconds after which a subscriber reads the store though no ring
    # came (notifications/feed.py), the safety net under the doorbell.
    subscription_poll: float = 30.0
    # What budgets, breaker pauses, token expiry over WebSocket and the expiry check's interval
    # wait on (clock.py): the system's; tests pass one they move themselves.
    clock: Clock = SYSTEM_CLOCK
    # HUB_EXPORT_BATCH_ROWS: rows an export reads per keyset batch, audits per commit and
    # writes per Parquet row group (edge/exports.py); what its memory is bounded by.
    export_batch_rows: int = 2000
    # HUB_RUN_LEASE: seconds a workflow run's lease lasts (its process renews it a third of that
    # apart; past it, any process undoes the run). HUB_IDEMPOTENCY_WAIT: seconds a request waits
    # for an in-flight run with its idempotency key before answering CONFLICT.
    run_lease: float = 30.0
    idempotency_wait: float = 10.0
    # HUB_DB_POOL: the most connections this process opens per database (half of them kept):
    # N processes on one PostgreSQL server open up to N x databases x this, which must stay
    # within its max_connections, or connecting fails instead of waiting.
    db_pool: int = DEFAULT_POOL

    @classmethod
    def for_directory(
        cls,
        data_dir: Path,
        fixed_today: date | None = None,
        agencies: Sequence[AgencySpec] = DEFAULT_AGENCIES,
    ) -> Settings:
        return cls(
            data_dir=data_dir,
            source_urls={spec.id: sqlite_url(data_dir / spec.file_name) for spec in agencies},
            source_budgets=default_budgets(agencies),
            agencies=tuple(agencies),
            store_url=sqlite_url(data_dir / "hub_store.sqlite"),
            audit_url=sqlite_url(data_dir / "audit.sqlite"),
            fixed_today=fixed_today,
        )

    @classmethod
    def from_environment(
        cls, environ: dict[str, str] | None = None, agencies: Sequence[AgencySpec] = DEFAULT_AGENCIES
    ) -> Settings:
        env = dict(os.environ if environ is None else environ)
        data_dir = Path(env.get("HUB_DATA_DIR", "var"))
        defaults = cls.for_directory(data_dir, agencies=agencies)
        today = env.get("HUB_TODAY")
        limits = Limits()
        return cls(
            data_dir=data_dir,
            source_urls={
                spec.id: env.get(spec.url_variable) or defaults.source_urls[spec.id] for spec in agencies
            },
            agencies=tuple(agencies),
            store_url=env.get("HUB_STORE_URL") or defaults.store_url,
            audit_url=env.get("HUB_AUDIT_URL") or defaults.audit_url,
            audit_witness=_witness(env, env.get("HUB_AUDIT_URL") or defaults.audit_url),
            fixed_today=date.fromisoformat(today) if today else None,
            policy_path=Path(env["HUB_POLICY"]) if env.get("HUB_POLICY") else defaults.policy_path,
            source_budgets=budgets_from_environment(env, agencies),
            limits=Limits(
                max_document_bytes=_count(env, "HUB_MAX_DOCUMENT_BYTES", limits.max_document_bytes),
                max_depth=_count(env, "HUB_MAX_DEPTH", limits.max_depth),
                max_aliases=_count(env, "HUB_MAX_ALIASES", limits.max_aliases),
                max_tokens=_count(env, "HUB_MAX_TOKENS", limits.max_tokens),
                max_cost=_count(env, "HUB_MAX_COST", limits.max_cost),
                max_nodes=_count(env, "HUB_MAX_NODES", limits.max_nodes),
                max_nesting=_count(env, "HUB_MAX_NESTING", limits.max_nesting),
                max_resolved_fields=_count(env, "HUB_MAX_RESOLVED_FIELDS", limits.max_resolved_fields),
                rate_limit=env.get("HUB_RATE_LIMIT", limits.rate_limit),
            ),
            shutdown_grace=_seconds(env, "HUB_SHUTDOWN_GRACE", cls.shutdown_grace),
            ready_timeout=_seconds(env, "HUB_READY_TIMEOUT", cls.ready_timeout),
            log_level=_log_level(env.get("HUB_LOG_LEVEL", cls.log_level)),
            verifier_jwks=env.get("HUB_VERIFIER_JWKS") or None,
            redis_url=env.get("HUB_REDIS_URL") or None,
            redis_prefix=env.get("HUB_REDIS_PREFIX") or cls.redis_prefix,
            max_subscriptions_per_person=_count(
                env, "HUB_MAX_SUBSCRIPTIONS_PER_PERSON", cls.max_subscriptions_per_person
            ),
            subscription_poll=_positive_seconds(env, "HUB_SUBSCRIPTION_POLL", cls.subscription_poll),
            run_lease=_positive_seconds(env, "HUB_RUN_LEASE", cls.run_lease),
            db_pool=_count(env, "HUB_DB_POOL", cls.db_pool),
            idempotency_wait=_seconds(env, "HUB_IDEMPOTENCY_WAIT", cls.idempotency_wait),
            export_batch_rows=_count(env, "HUB_EXPORT_BATCH_ROWS", cls.export_batch_rows),
            trusted_documents=Path(env["HUB_TRUSTED_DOCUMENTS"])
            if env.get("HUB_TRUSTED_DOCUMENTS")
            else None,
        )

    def private_files(self) -> list[Path]:
        """The files the hub writes in its data directory, or anywhere it keeps SQLite files:
        each database with its companions, and the witness file."""
        urls = [*self.source_urls.values(), self.store_url, self.audit_url]
        witness = self.witness_location()
        return [
            *sqlite_files([*urls, witness] if "://" in witness else urls),
            *([] if "://" in witness else [Path(witness)]),
        ]

    def witness_location(self) -> str:
        """The audit witness: a file path, or an SQLAlchemy URL of a database of its own."""
        return self.audit_witness or str(self.data_dir / WITNESS_FILE)

    def today(self) -> date:
        """Today in Asia/Shanghai, unless the clock is set."""
        if self.fixed_today is not None:
            return self.fixed_today
        return datetime.now(SHANGHAI).date()


def _count(env: dict[str, str], name: str, default: int) -> int:
    """A limit: a whole number, at least 1; anything else stops the start."""
    value = env.get(name, "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise ValueError(f"{name}: {value!r} is not a whole number of at least 1")
    return int(value)


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    """A non-negative number of seconds (fractions allowed); anything else stops the start."""
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not a number of seconds") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"{name}: {value!r} is not a number of seconds")
    return seconds


def _positive_seconds(env: dict[str, str], name: str, default: float) -> float:
    """Seconds more than 0 (a poll's interval, a lease); anything else stops the start."""
    seconds = _seconds(env, name, default)
    if seconds <= 0:
        raise ValueError(f"{name}: {env[name]!r} is not a number of seconds above 0")
    return seconds


def _witness(env: dict[str, str], audit_url: str) -> str | None:
    """HUB_AUDIT_WITNESS, which must not be the audit database it is to vouch for."""
    value = env.get("HUB_AUDIT_WITNESS", "").strip()
    if not value:
        return None
    if "://" in value and _same_database(value, audit_url):
        raise ValueError("HUB_AUDIT_WITNESS: the witness must be another database than HUB_AUDIT_URL")
    return value


def _same_database(one: str, other: str) -> bool:
    a, b = make_url(one), make_url(other)
    if a.get_backend_name() == b.get_backend_name() == "sqlite" and a.database and b.database:
        return Path(a.database).resolve() == Path(b.database).resolve()
    return (a.host, a.port, a.database) == (b.host, b.port, b.database)


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"HUB_LOG_LEVEL: {value!r} is not DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level
