"""GitHub providers (github.com, GHE.com, Enterprise Server): git (``git.py``), Actions (``actions.py``)."""
