"""Customers' personal data under the LGPD: pseudonyms, what an event keeps, erasure.

A data subject is a customer's phone number within a tenant (the contact centre, the
controller; this pipeline processes on its behalf). ``subject`` turns a phone into the
tenant's keyed pseudonym, ``scrub`` blanks or replaces the personal fields of an event,
``policy`` says per tenant what the warehouse keeps. docs/privacy.md tells the whole story.
"""
