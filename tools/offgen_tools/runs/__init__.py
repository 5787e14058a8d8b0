"""One run-query engine over several run sources (WandB public API, offline run files)."""

from offgen_tools.runs.engine import FetchReport, RunQuery
from offgen_tools.runs.filters import match_filters
from offgen_tools.runs.model import History, RunInfo, Series

__all__ = ["FetchReport", "History", "RunInfo", "RunQuery", "Series", "match_filters"]
