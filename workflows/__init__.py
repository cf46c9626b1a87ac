"""Temporal workflows: one package per workflow (models, activities, workflow)."""
