# Vault policy for the Keyless of one namespace: `payments` here. Copy it per namespace and replace
# `payments`; the policy is written as `payments-keyless` (README.md beside this file). It lets
# Keyless read only that namespace's credentials, and keep its own token and leases alive.

# KV v2 secrets (HTTP API keys, static passwords): the latest or a pinned version, both reads of
# data/. The KV v2 mount is `secret`; a KV v1 mount would be `path "kv/payments/*"`.
path "secret/data/payments/*" {
  capabilities = ["read"]
}

# Database secrets engine: dynamic credentials (leased, a fresh user per read) and static ones.
# Name the namespace's database roles `payments-<something>`.
path "database/creds/payments-*" {
  capabilities = ["read"]
}
path "database/static-creds/payments-*" {
  capabilities = ["read"]
}

# Renew and look up the leases of those dynamic credentials while connections use them. (Vault's
# `default` policy grants these too; they are repeated so the role also works with
# token_no_default_policy=true.)
path "sys/leases/renew" {
  capabilities = ["update"]
}
path "sys/leases/lookup" {
  capabilities = ["update"]
}

# Keep Keyless's own token alive, and read its TTL.
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
