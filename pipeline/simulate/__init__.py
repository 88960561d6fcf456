"""A stand-in for Plug: generate realistic webhook traffic and send it to an ingress."""
