"""The logic behind the panels: one module per feature, each a :class:`~viewer.features.base.Feature` that
handles its actions, polls its jobs and publishes into ``AppInfo`` (docs/architecture.md)."""
