"""The `signing-proxy keys` command: provisioning venue keys into Vault (cli.py parses, provisioning.py acts).

Not to be confused with signers/keyops.py (the sign-time key operations).
"""
