"""eprescrire: secure electronic prescriptions in the style of France's ordonnance numérique."""

__version__ = "0.1.0"

__all__ = ["__version__"]
