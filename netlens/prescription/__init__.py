"""The prescription: the YAML file a user writes, validated into a `Design`."""
from netlens.prescription.design import Design, design_from_text, load_design
from netlens.prescription.rows import Row
from netlens.prescription.variables import Variable

__all__ = ["Design", "Row", "Variable", "design_from_text", "load_design"]
