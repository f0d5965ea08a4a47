"""The social insurance agency's tables, in the national data dictionary's codes (DOMAIN.md, system 2)."""

from sqlalchemy import Column, Index, Integer, MetaData, String, Table

metadata = MetaData()

# Insured person: names mixed case, given names first, diacritics folded; dates integer YYYYMMDD.
AC01 = Table(
    "AC01",
    metadata,
    Column("AAC001", Integer, primary_key=True, autoincrement=False),
    Column("AAC002", String(18), nullable=True),
    Column("AAC003", String(60), nullable=False),
    Column("AAC004", String(1), nullable=False),
    Column("AAC006", Integer, nullable=False),
    Column("AAC161", String(3), nullable=False),
    Column("AAE135", String(20), nullable=False),
    Index("ix_AC01_AAC002", "AAC002"),
    Index("ix_AC01_AAE135", "AAE135"),
)

# Participation, one row per insurance type, history kept; only AAE100 = '1' rows count.
AC02 = Table(
    "AC02",
    metadata,
    Column("AAC001", Integer, nullable=False),
    Column("AAE140", String(3), nullable=False),
    Column("AAC008", String(1), nullable=False),
    Column("AAE030", Integer, nullable=False),
    Column("AAE031", Integer, nullable=True),
    Column("AAB001", Integer, nullable=False),
    Column("AAE100", String(1), nullable=False),
    Index("ix_AC02_AAC001", "AAC001"),
)

# Employer.
AB01 = Table(
    "AB01",
    metadata,
    Column("AAB001", Integer, primary_key=True, autoincrement=False),
    Column("AAB004", String(100), nullable=False),
    Column("AAB998", String(18), nullable=False),
    Index("ix_AB01_AAB998", "AAB998"),
)
