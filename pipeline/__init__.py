"""KPI scorecard pipeline: Excel templates in, validated, scored, audit-ready scorecards out."""

__version__ = "0.1.0"
