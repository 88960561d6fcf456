"""The contact centre now: live figures per tenant, the wallboard and alerts."""
