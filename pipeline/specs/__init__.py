"""Documents written from the code: the JSON Schema of every topic, AsyncAPI, OpenAPI."""
