"""BEIJING PASS tables (DOMAIN.md, system 5): amounts in fen, dates YYYY-MM-DD."""

from sqlalchemy import Column, Integer, MetaData, String, Table

metadata = MetaData()

# Benefit catalogue.
BJT_DY = Table(
    "BJT_DY",
    metadata,
    Column("DYDM", String(8), primary_key=True),
    Column("DYMC", String(60), nullable=False),
    Column("JE", Integer, nullable=False),
)

# Payments, by card number; FFRQ is the payment date (the planned one while pending).
BJT_FF = Table(
    "BJT_FF",
    metadata,
    Column("KH", String(9), primary_key=True),
    Column("DYDM", String(8), primary_key=True),
    Column("FFRQ", String(10), primary_key=True),
    Column("JE", Integer, nullable=False),
    Column("ZT", String(1), nullable=False),
)
