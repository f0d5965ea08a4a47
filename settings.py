"""The hub's settings, read once from the environment at start."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters.records import Agency

SHANGHAI = ZoneInfo("Asia/Shanghai")

# One variable per agency; each defaults to its own SQLite file in the data directory.
SOURCE_URL_VARIABLES: dict[Agency, str] = {
    Agency.WORK_PERMIT_SYSTEM: "HUB_WORK_PERMIT_URL",
    Agency.SOCIAL_INSURANCE: "HUB_SOCIAL_INSURANCE_URL",
    Agency.CARD_SERVICE: "HUB_CARD_SERVICE_URL",
    Agency.EXIT_ENTRY: "HUB_EXIT_ENTRY_URL",
    Agency.BEIJING_PASS: "HUB_BEIJING_PASS_URL",
}
SOURCE_FILE_NAMES: dict[Agency, str] = {
    Agency.WORK_PERMIT_SYSTEM: "work_permit.sqlite",
    Agency.SOCIAL_INSURANCE: "social_insurance.sqlite",
    Agency.CARD_SERVICE: "card_service.sqlite",
    Agency.EXIT_ENTRY: "exit_entry.sqlite",
    Agency.BEIJING_PASS: "beijing_pass.sqlite",
}


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@dataclass(frozen=True)
class Settings:
    """Where the databases are and what the hub's clock says.

    >>> Settings.for_directory(Path("var")).source_urls[Agency.EXIT_ENTRY]
    'sqlite+aiosqlite:///var/exit_entry.sqlite'
    """

    data_dir: Path
    source_urls: dict[Agency, str]
    store_url: str
    fixed_today: date | None = None
    demo: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_directory(cls, data_dir: Path, fixed_today: date | None = None) -> Settings:
        return cls(
            data_dir=data_dir,
            source_urls={agency: sqlite_url(data_dir / name) for agency, name in SOURCE_FILE_NAMES.items()},
            store_url=sqlite_url(data_dir / "hub_store.sqlite"),
            fixed_today=fixed_today,
        )

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        data_dir = Path(env.get("HUB_DATA_DIR", "var"))
        defaults = cls.for_directory(data_dir)
        today = env.get("HUB_TODAY")
        return cls(
            data_dir=data_dir,
            source_urls={
                agency: env.get(variable) or defaults.source_urls[agency]
                for agency, variable in SOURCE_URL_VARIABLES.items()
            },
            store_url=env.get("HUB_STORE_URL") or defaults.store_url,
            fixed_today=date.fromisoformat(today) if today else None,
            demo=env.get("HUB_DEMO", "") == "1",
        )

    def today(self) -> date:
        """Today in Asia/Shanghai, unless the clock is set."""
        if self.fixed_today is not None:
            return self.fixed_today
        return datetime.now(SHANGHAI).date()

    def uses_default_sqlite(self) -> bool:
        return all(url.startswith("sqlite") for url in self.source_urls.values())
