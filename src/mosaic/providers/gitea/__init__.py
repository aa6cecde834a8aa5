"""Gitea and Forgejo providers (REST API v1)."""
