"""`crmbot demo`: a reproducible demo shop and scripted conversations through the core."""
