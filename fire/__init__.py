"""FIRE (Frobenius-Isometry REinitialization), baseline interventions and plasticity diagnostics.

Depends on torch only.
"""
