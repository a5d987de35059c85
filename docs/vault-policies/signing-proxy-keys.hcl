# The security team's token for `signing-proxy keys put | rotate | retire | check`.
# It can import keys and new versions, retire old versions and check them, but it can
# NOT make a key exportable: `exportable` is the one switch that would let key material
# out of Vault (Transit refuses export only while exportable is false).

path "secret/data/signing-proxy/*" {
  capabilities = ["create", "update", "read"]
}

path "secret/metadata/signing-proxy/*" {
  capabilities = ["read", "update"]
  # Only custom_metadata: where the Transit pin moved (`keys retire` waits for the replicas'
  # cache from then on); never max_versions or delete_version_after.
  allowed_parameters = {
    "custom_metadata" = []
  }
}

# After a Transit import, earlier KV versions that held the secret are destroyed.
path "secret/destroy/signing-proxy/*" {
  capabilities = ["update"]
}

path "transit/wrapping_key" {
  capabilities = ["read"]
}

path "transit/keys/+" {
  capabilities = ["read"]
}

path "transit/keys/+/import" {
  capabilities = ["update"]
}

path "transit/keys/+/import_version" {
  capabilities = ["update"]
}

# `keys retire` sets min_encryption_version / min_decryption_version; nothing else.
path "transit/keys/+/config" {
  capabilities = ["update"]
  allowed_parameters = {
    "min_encryption_version" = []
    "min_decryption_version" = []
  }
}

# The self-test after each import: Vault's MAC or signature must match the secret's.
path "transit/hmac/+/*" {
  capabilities = ["update"]
}

path "transit/sign/+/*" {
  capabilities = ["update"]
}
