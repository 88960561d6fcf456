"""What the tests share: runners, servers, brokers, warehouses and payloads, written once.

conftest files hold fixtures only and import from here; no test module imports another.
"""
