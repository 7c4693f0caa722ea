#!/usr/bin/env bash
# Generates the certificate chain and DKIM keys named by examples/example.org.toml.
#
#   examples/generate.sh           create the files that are missing, keep the others
#   examples/generate.sh --force   regenerate everything
#
# Needs only bash and openssl. The files are committed: they are EXAMPLE keys for tests and
# documentation, never to be used for real mail. See examples/README.md.
set -euo pipefail

usage() { echo "usage: $0 [--force]" >&2; exit 2; }
force=0
case "${1-}" in
  "") ;;
  --force) force=1 ;;
  *) usage ;;
esac
[[ $# -le 1 ]] || usage

cd "$(dirname "$0")"
umask 077
mkdir -p -m 0755 certs keys

CA_KEY=certs/ca.key
CA_CERT=certs/ca.pem
LEAF_KEY=certs/mail.example.org.key
CHAIN=certs/mail.example.org.pem
DKIM_ED25519=keys/202611e.pem
DKIM_RSA=keys/202611r.pem

if [[ $force == 1 ]]; then
  rm -f "$CA_KEY" "$CA_CERT" "$LEAF_KEY" "$CHAIN" "$DKIM_ED25519" "$DKIM_RSA"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say() { echo "generate.sh: $*"; }

# Runs openssl quietly (it prints progress dots and "... ok" to stderr); shows stderr on failure.
ossl() {
  if ! openssl "$@" 2> "$tmp/stderr"; then
    cat "$tmp/stderr" >&2
    echo "generate.sh: openssl $1 failed" >&2
    exit 1
  fi
}

# A positive 128-bit serial number (RFC 5280 §4.1.2.2: at most 20 octets, positive).
serial() { echo "0x$(openssl rand -hex 16)"; }

# --- example CA: EC P-256 key, self-signed, CA:TRUE, 20 years -----------------------
ca_made=0
if [[ ! -s $CA_KEY ]]; then
  ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$CA_KEY"
  rm -f "$CA_CERT"
  say "made $CA_KEY"
fi
if [[ ! -s $CA_CERT ]]; then
  ossl req -x509 -new -sha256 -key "$CA_KEY" -days 7300 -set_serial "$(serial)" \
    -subj "/O=mailzone example/CN=mailzone example CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$CA_CERT"
  chmod 0644 "$CA_CERT"
  ca_made=1
  say "made $CA_CERT"
fi

# --- leaf for mail.example.org: EC P-256 key, CA:FALSE, 10 years, signed by the CA ---
if [[ ! -s $LEAF_KEY ]]; then
  ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$LEAF_KEY"
  rm -f "$CHAIN"
  say "made $LEAF_KEY"
fi
if [[ ! -s $CHAIN || $ca_made == 1 ]]; then
  cat > "$tmp/leaf.ext" <<'EXT'
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
subjectAltName = DNS:mail.example.org,DNS:mta-sts.example.org,DNS:autoconfig.example.org,DNS:autodiscover.example.org,DNS:ua-auto-config.example.org
EXT
  ossl req -new -sha256 -key "$LEAF_KEY" -subj "/CN=mail.example.org" -out "$tmp/leaf.csr"
  ossl x509 -req -sha256 -in "$tmp/leaf.csr" -CA "$CA_CERT" -CAkey "$CA_KEY" \
    -set_serial "$(serial)" -days 3650 -extfile "$tmp/leaf.ext" -out "$tmp/leaf.pem"
  # The chain: leaf first, then the issuer.
  cat "$tmp/leaf.pem" "$CA_CERT" > "$CHAIN"
  chmod 0644 "$CHAIN"
  say "made $CHAIN (leaf + CA)"
fi

# --- DKIM keys, PKCS#8 PEM -----------------------------------------------------------
if [[ ! -s $DKIM_ED25519 ]]; then
  ossl genpkey -algorithm ed25519 -out "$DKIM_ED25519"
  say "made $DKIM_ED25519"
fi
if [[ ! -s $DKIM_RSA ]]; then
  ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$DKIM_RSA"
  say "made $DKIM_RSA"
fi

chmod 0600 "$CA_KEY" "$LEAF_KEY" "$DKIM_ED25519" "$DKIM_RSA"

# Sanity: the chain verifies and the leaf matches its key.
openssl verify -CAfile "$CA_CERT" "$CHAIN" > /dev/null
[[ "$(openssl x509 -in "$CHAIN" -noout -pubkey)" == "$(openssl pkey -in "$LEAF_KEY" -pubout)" ]] \
  || { echo "generate.sh: $LEAF_KEY does not match the leaf of $CHAIN (run with --force)" >&2; exit 1; }
say "ok: $(cd .. && echo examples/certs/* examples/keys/*)"
