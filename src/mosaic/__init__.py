"""MosAIc: one interface over git forges, CI/CD, docs and project-management services."""

from mosaic.api import Orchestrator
from mosaic.errors import MosaicError

__all__ = ["MosaicError", "Orchestrator"]
__version__ = "0.1.0"
