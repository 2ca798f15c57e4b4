"""The project's copies of the waste-code nomenclature and operation codes (see nomenclature.py)."""
