#!/bin/sh
# A private CA and a server certificate for the compose proxy (replace with real ones).
set -eu
cd "$(dirname "$0")"
mkdir -p certs
openssl req -x509 -newkey rsa:3072 -nodes -days 365 -subj "/CN=oms-auth test CA" \
  -keyout certs/ca.key -out certs/ca.crt
openssl req -newkey rsa:3072 -nodes -subj "/CN=${1:-localhost}" \
  -keyout certs/server.key -out certs/server.csr
printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\n' "${1:-localhost}" > certs/san.ext
openssl x509 -req -in certs/server.csr -CA certs/ca.crt -CAkey certs/ca.key -CAcreateserial \
  -days 365 -extfile certs/san.ext -out certs/server.crt
chmod 600 certs/*.key
echo "certs/ca.crt is the CA clients must trust"
