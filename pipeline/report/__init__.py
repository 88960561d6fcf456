"""The analytics report: KPI views in, one self-contained HTML file out.

``source`` opens the warehouse read-only, ``queries`` turns views into a
``model.Report``, ``charts`` and ``page`` draw it, ``numbers`` formats it per
locale, and ``command`` is ``plug-pipeline report``.
"""
