"""`fer review`: each run's headline metrics at two revisions, the change, its noise band and a verdict."""
