"""GitLab provider (gitlab.com and self-managed, REST API v4)."""
