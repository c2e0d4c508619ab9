"""Field inspections, appraisals, photos, renovation cases and audits (issues 3 and 4)."""
