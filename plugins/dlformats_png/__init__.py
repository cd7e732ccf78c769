"""Plugin under construction."""
