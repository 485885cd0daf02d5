"""`dispatch serve`: the one-click unsubscribe endpoint, its confirmation page, the webhooks."""
