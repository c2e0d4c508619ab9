"""Renovation cases: rules (area, subsidy, overdue) and the services that move a case."""
