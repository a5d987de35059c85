# The proxy's own token (vault.auth): read the public KV fields, compute MACs and signatures
# with the venue keys. Nothing else: no key read, export, backup, config or import.
# Mount names are the defaults (vault.kv_mount: secret, vault.transit_mount: transit).

path "secret/data/signing-proxy/*" {
  capabilities = ["read"]
}

# transit/hmac/<key>/sha2-256 and transit/sign/<key>/sha2-256, keys named signing-proxy-*
path "transit/hmac/signing-proxy-*" {
  capabilities = ["update"]
}

path "transit/sign/signing-proxy-*" {
  capabilities = ["update"]
}

# Its own token: look it up (a 403 elsewhere is only taken for an expired token when this
# fails), renew it, and revoke the token a re-login replaces. Vault's `default` policy
# grants these too; they are listed so a role with token_no_default_policy still works.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}

path "auth/token/revoke-self" {
  capabilities = ["update"]
}
