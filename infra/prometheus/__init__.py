"""Prometheus for the stack: the scrape configuration template and its alert rules.

``prometheus.yml`` (a template) and ``rules/*.yml`` are the product; :mod:`.config`
renders the template with the stack's addresses. The rules' promtool unit tests live in
``tests/*.yml`` here, beside the rules they test.
"""

from infra.prometheus.config import (
    RULES_DIR,
    TEMPLATE,
    ScrapeTargets,
    render_config,
    stack_config,
    stack_targets,
)

__all__ = [
    "RULES_DIR",
    "TEMPLATE",
    "ScrapeTargets",
    "render_config",
    "stack_config",
    "stack_targets",
]
