"""Bitbucket Cloud provider (REST API 2.0)."""
