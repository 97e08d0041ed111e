"""The sections of the HTML report, one function each.

A section function takes the ``report.json`` document and returns a
:class:`Section` (its title, the values its template shows, its figures) or
None when the report holds no data for it. :data:`SECTIONS` lists them in
page order. Adding a section is one function decorated with
:func:`section` (in the module of its family, or a new one imported here)
plus one template ``templates/section_<id>.html.j2``.

Each function's docstring gives the JSON shape it reads. Sections whose
data other parts of embvar write accept that shape and a few obvious
variants (a list where one entry is expected, a key one level up); anything
else is reported on the page by :mod:`embvar.report.html` instead of
failing the whole report.

- :mod:`~embvar.report.sections.study`: summary, the three levels, the
  least stable entities, methods;
- :mod:`~embvar.report.sections.analysis`: attribution, perturbation,
  PERMANOVA, dynamics, frequency, trade-off, the article's examples;
- :mod:`~embvar.report.sections.audit`: determinism, manifest, compare.
"""

from embvar.report.sections import analysis, audit, study  # noqa: F401  (registers)
from embvar.report.sections._common import (
    ORDER,
    SECTIONS,
    FigureBlock,
    Section,
    fmt_fixed,
    fmt_number,
    group_labels,
    lookup,
    non_dominated,
    section,
)

__all__ = [
    "ORDER",
    "SECTIONS",
    "FigureBlock",
    "Section",
    "fmt_fixed",
    "fmt_number",
    "group_labels",
    "lookup",
    "non_dominated",
    "section",
]
