"""`dispatch serve`: the one-click unsubscribe endpoint, its confirmation page, and the relays' webhooks."""
