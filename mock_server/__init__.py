"""A stateful, spec-driven mock of five loyalty, CRM and POS APIs."""

__version__ = "0.1.0"
