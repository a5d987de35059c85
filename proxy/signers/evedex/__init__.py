"""EVEDEX: SIWE session login (session.py), EIP-712 order signing (orders.py), the signer (signer.py)."""
