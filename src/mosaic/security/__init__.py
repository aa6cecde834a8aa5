"""Authentication, authorization, secrets, audit and compliance guards.

* :mod:`.authn` — ``Authenticator.authenticate(header) -> Identity`` (API keys, OIDC, static keys)
* :mod:`.apikeys` — ``mk_<id>_<secret>`` keys, argon2 hashes
* :mod:`.oidc` — JWT bearer verification against a JWKS
* :mod:`.rbac` — roles and permissions per tenant (pycasbin)
* :mod:`.crypto` — envelope encryption of provider credentials
* :mod:`.audit` — the hash-chained, append-only audit log
* :mod:`.redaction` — masking secrets in logs and errors
* :mod:`.residency`, :mod:`.ssrf` — data-residency and SSRF guards
* :mod:`.layers` — the gateway layers and their order
"""
