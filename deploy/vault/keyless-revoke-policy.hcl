# Extra policy, only for a Keyless configured to revoke its dynamic credentials' leases on shutdown
# (without it, the database users simply expire at the end of their lease). Written as
# `payments-keyless-revoke` and added to the role's token_policies (README.md beside this file).

# PUT sys/leases/revoke {"lease_id": "..."}: the form Vault clients (node-vault's revoke()) send.
# Vault cannot restrict this form by lease path: the token may revoke any lease whose ID it knows.
# Lease IDs are random and Keyless only knows its own, but grant it only where revocation is wanted.
path "sys/leases/revoke" {
  capabilities = ["update"]
}

# PUT sys/leases/revoke/<lease_id>: the same, with the lease ID in the path, so the grant can be
# limited to this namespace's database roles.
path "sys/leases/revoke/database/creds/payments-*" {
  capabilities = ["update"]
}
