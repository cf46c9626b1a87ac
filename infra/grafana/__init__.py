"""Grafana dashboards as code, and their provisioning into a Grafana.

- :mod:`infra.grafana.catalog`: every metric name the dashboards query (one place).
- :mod:`infra.grafana.model`: a tiny panel and dashboard builder.
- :mod:`infra.grafana.overview`, :mod:`~infra.grafana.engine`,
  :mod:`~infra.grafana.operations`: the three dashboards.
- :mod:`infra.grafana.dashboards`: the generator (``python -m infra.grafana.dashboards
  --write``) and datasource pinning.
- :mod:`infra.grafana.promql`: the metric names an expression selects.
- :mod:`infra.grafana.push`: provisioning with grafana-client (``bot4 dashboards push``).

Nothing is imported here: ``python -m infra.grafana.dashboards`` must not find its own
module already imported by the package (runpy warns, and tests treat warnings as errors).
"""
