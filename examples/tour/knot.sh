#!/usr/bin/env bash
# The tour's DNS server: a Knot serving the zone tour.test on 127.0.0.1:5300 (and its parent
# test. and the reverse zone of 192.0.2.25, so that `check` gets every answer), accepting
# RFC 2136 updates signed with a fresh TSIG key (hmac-sha256, written 0600 to
# /tmp/mailzone-tour/tsig.key, the file examples/tour/mailzone.toml names).
#
#   examples/tour/knot.sh start    # needs Debian's knot and knot-dnsutils packages
#   examples/tour/knot.sh stop     # stops it and removes /tmp/mailzone-tour
#
# Loopback only; nothing here touches the network.
set -euo pipefail

DIR=/tmp/mailzone-tour
PORT=5300
ZONE=tour.test

need() { command -v "$1" > /dev/null || { echo "knot.sh: $1 not found: apt-get install knot knot-dnsutils" >&2; exit 1; }; }
PATH=$PATH:/usr/sbin:/sbin

start() {
  need knotd; need keymgr; need kdig
  if [[ -f $DIR/knot.pid ]] && kill -0 "$(cat "$DIR/knot.pid")" 2> /dev/null; then
    echo "knot.sh: already running (pid $(cat "$DIR/knot.pid"))"; return
  fi
  mkdir -p "$DIR/db"
  chmod 0700 "$DIR"
  # keymgr prints the key as Knot configuration: `secret: <base64>`.
  secret=$(keymgr -t mailzone hmac-sha256 | awk '/secret:/ {print $2}')
  (umask 077; printf '%s\n' "$secret" > "$DIR/tsig.key")
  cat > "$DIR/$ZONE.zone" <<ZONE
\$ORIGIN $ZONE.
\$TTL 300
@    SOA ns1 hostmaster 1 3600 600 604800 300
@    NS  ns1
ns1  A   127.0.0.1
www  A   192.0.2.80   ; a record mailzone does not own: it stays untouched
ZONE
  # So that `check --nameserver` gets answers for the questions outside tour.test too: the
  # parent (CAA is looked up up the tree, RFC 8659 §3) and the mail host's reverse zone
  # (its PTR, the forward-confirmed reverse DNS receivers test).
  cat > "$DIR/test.zone" <<ZONE
\$ORIGIN test.
\$TTL 300
@         SOA ns1.tour.test. hostmaster.tour.test. 1 3600 600 604800 300
@         NS  ns1.tour.test.
tour      NS  ns1.tour.test.
ZONE
  cat > "$DIR/reverse.zone" <<ZONE
\$ORIGIN 2.0.192.in-addr.arpa.
\$TTL 300
@         SOA ns1.tour.test. hostmaster.tour.test. 1 3600 600 604800 300
@         NS  ns1.tour.test.
25        PTR mail.tour.test.
ZONE
  (umask 077; cat > "$DIR/knot.conf" <<CONF
server:
  listen: 127.0.0.1@$PORT
  rundir: $DIR
log:
  - target: $DIR/knotd.log
    any: info
database:
  storage: $DIR/db
key:
  - id: mailzone
    algorithm: hmac-sha256
    secret: $secret
acl:
  - id: update
    key: mailzone
    action: [update, transfer]
zone:
  - domain: $ZONE
    storage: $DIR
    file: $ZONE.zone
    zonefile-sync: -1
    journal-content: changes
    acl: update
  - domain: test
    storage: $DIR
    file: test.zone
  - domain: 2.0.192.in-addr.arpa
    storage: $DIR
    file: reverse.zone
CONF
)
  knotd -d -c "$DIR/knot.conf"
  for _ in $(seq 50); do
    if kdig @127.0.0.1 -p "$PORT" +tcp +short "$ZONE" SOA > /dev/null 2>&1; then
      echo "knot.sh: serving $ZONE on 127.0.0.1:$PORT (TSIG key mailzone in $DIR/tsig.key)"
      return
    fi
    sleep 0.1
  done
  echo "knot.sh: knotd did not answer; see $DIR/knotd.log" >&2
  exit 1
}

stop() {
  if [[ -f $DIR/knot.pid ]]; then
    local pid
    pid=$(cat "$DIR/knot.pid")
    kill "$pid" 2> /dev/null || true
    # knotd still writes its databases while it shuts down: an rm racing it can find the
    # directory refilled ("Directory not empty"). Wait (up to 5 s) until it is gone.
    for _ in $(seq 50); do
      kill -0 "$pid" 2> /dev/null || break
      sleep 0.1
    done
  fi
  rm -rf "$DIR"
  echo "knot.sh: stopped"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
