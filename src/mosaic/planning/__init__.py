"""Provider-neutral planning algorithms shared by every project-management provider."""

from mosaic.planning.sprint import ALGORITHM, PlanIssue, PlanResult, plan_sprint

__all__ = ["ALGORITHM", "PlanIssue", "PlanResult", "plan_sprint"]
