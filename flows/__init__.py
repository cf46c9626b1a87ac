"""Prefect flows: thin orchestration of logic that lives in engine/ and infra/."""
