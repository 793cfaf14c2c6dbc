"""restore-workspace: what a later job calls instead of checkout + setup + install + generate."""
