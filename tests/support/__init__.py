"""Test helpers shared by provider tests.

* ``spec_validation``: check requests/responses against the vendors' API descriptions;
* ``swagger2``: Swagger 2.0 → OpenAPI 3.0 for those descriptions;
* ``fake_upstream``: route tables for stateful fakes served through ``httpx.MockTransport``;
* ``paths``: path-template matching shared by the two above;
* ``conformance``: the registry of git providers run by the shared conformance suite.
"""
