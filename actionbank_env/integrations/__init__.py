"""Optional integrations (SB3, Ray); each import fails with the extra to install."""
