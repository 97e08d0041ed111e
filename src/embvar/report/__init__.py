"""Reports: report.json (the source of truth), terminal summary, progress."""

from embvar.report.document import build_report, read_report, write_report
from embvar.report.summary import summary_sentences

__all__ = ["build_report", "read_report", "write_report", "summary_sentences"]
