"""``td-connector demo``: the whole pipeline on sample business data shipped with the package."""
