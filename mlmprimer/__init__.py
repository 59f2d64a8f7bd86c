"""mlmprimer: companion library of the multilevel regression course."""

__version__ = "0.1.0"
