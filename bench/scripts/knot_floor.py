#!/usr/bin/env python3
"""The floor of the scale targets: how fast one Knot applies N UPDATEs, one per zone,
when the client costs (almost) nothing.

Every UPDATE (26 records, the size of mailzone's publish of a zone) is built and
TSIG-signed before the clock starts; the timed part only writes the prepared bytes over
`--concurrency` TCP connections and reads the answers. The ratio printed is wall time
over knotd's CPU time, the measure of scale_table's targets: what no client can beat with
this knotd, on this machine.

    python3 -m venv /tmp/floor-venv && /tmp/floor-venv/bin/pip install dnspython
    /tmp/floor-venv/bin/python bench/scripts/knot_floor.py --zones 10000 --concurrency 16,64

knotd runs from a temporary directory on 127.0.0.1 (a free port), with the journal
settings of crates/testkit (journal-content: changes, zonefile-sync: -1), and is stopped
at the end. The signatures must be used within TSIG's fudge (300 s): keep --zones at a
size whose messages are built and sent within that (10,000 takes about 30 s here).
"""

import argparse
import asyncio
import base64
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

import dns.rcode
import dns.tsig
import dns.tsigkeyring
import dns.update

SERVICES = ["_submission", "_submissions", "_imap", "_imaps", "_pop3", "_pop3s", "_jmap",
            "_caldavs", "_carddavs", "_sieve", "_autodiscover"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_knot(directory, zones, port, secret):
    conf = [
        "server:", f"  rundir: {directory}", f"  listen: 127.0.0.1@{port}",
        "log:", "  - target: stderr", "    any: info",
        "database:", f"  storage: {directory}/db",
        "key:", "  - id: bench", "    algorithm: hmac-sha256", f'    secret: "{secret}"',
        "acl:", "  - id: update", "    key: bench", "    action: update",
        "template:", "  - id: default", f"    storage: {directory}/zones",
        "    zonefile-load: whole", "    journal-content: changes", "    zonefile-sync: -1",
        "    serial-policy: increment", "    acl: [update]",
        "zone:",
    ]
    os.makedirs(f"{directory}/zones")
    os.makedirs(f"{directory}/db")
    for zone in zones:
        conf += [f"  - domain: {zone}", f"    file: {zone}.zone"]
        with open(f"{directory}/zones/{zone}.zone", "w") as f:
            f.write(f"$ORIGIN {zone}.\n@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 300\n"
                    "@ 3600 IN NS ns1\nns1 3600 IN A 127.0.0.1\n")
    with open(f"{directory}/knot.conf", "w") as f:
        f.write("\n".join(conf) + "\n")


def update_for(zone, keyring, tag):
    """26 records: MX, SPF, two DKIM keys, DMARC, TLS-RPT, MTA-STS, 11 SRV, CNAMEs, CAA."""
    u = dns.update.UpdateMessage(zone + ".", keyring=keyring, keyname="bench",
                                 keyalgorithm=dns.tsig.HMAC_SHA256)
    u.absent(f"{tag}-rsa._domainkey", "TXT")
    u.add("@", 3600, "MX", "10 mail.example.org.")
    u.add("@", 3600, "TXT", '"v=spf1 mx -all"')
    u.add(f"{tag}-rsa._domainkey", 3600, "TXT",
          '"v=DKIM1; k=rsa; p=' + "A" * 200 + '" "' + "B" * 190 + '"')
    u.add(f"{tag}-ed._domainkey", 3600, "TXT",
          '"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="')
    u.add("_dmarc", 3600, "TXT", '"v=DMARC1; p=reject; rua=mailto:dmarc@example.org"')
    u.add("_smtp._tls", 3600, "TXT", '"v=TLSRPTv1; rua=mailto:tls@example.org"')
    u.add("_mta-sts", 3600, "TXT", f'"v=STSv1; id={tag}"')
    u.add("mta-sts", 3600, "CNAME", "mail.example.org.")
    for i, service in enumerate(SERVICES):
        u.add(f"{service}._tcp", 3600, "SRV", f"{i} 1 {587 + i} mail.example.org.")
    u.add("autoconfig", 3600, "CNAME", "mail.example.org.")
    u.add("autodiscover", 3600, "CNAME", "mail.example.org.")
    u.add(f"{tag}-a", 3600, "TXT", '"a"')
    u.add(f"{tag}-b", 3600, "TXT", '"b"')
    u.add("@", 3600, "CAA", '0 issue "letsencrypt.org"')
    u.add("@", 3600, "CAA", '0 iodef "mailto:ca@example.org"')
    wire = u.to_wire()
    return struct.pack("!H", len(wire)) + wire


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def send_all(port, messages, concurrency):
    queue = list(reversed(messages))
    failed = []

    async def connection():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            writer.write(queue.pop())
            await writer.drain()
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            answer = await reader.readexactly(length)
            if answer[3] & 0xF != dns.rcode.NOERROR:
                failed.append(answer[3] & 0xF)
        writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--zones", type=int, default=10_000)
    parser.add_argument("--concurrency", default="16,64")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    zones = [f"z{i:05d}.bench.test" for i in range(args.zones)]
    secret = base64.b64encode(os.urandom(32)).decode()
    keyring = dns.tsigkeyring.from_text({"bench": secret})
    with tempfile.TemporaryDirectory(prefix="knot-floor-") as directory:
        port = free_port()
        write_knot(directory, zones, port, secret)
        with open(f"{directory}/knotd.log", "w") as log:
            knotd = subprocess.Popen(["knotd", "-c", f"{directory}/knot.conf"],
                                     stdout=log, stderr=log)
        try:
            time.sleep(2 + args.zones / 5000)
            print(f"knotd {knotd.pid}, {args.zones:,} zones, one UPDATE of 26 records each\n")
            print("| concurrency | wall | knotd CPU | wall ÷ knotd CPU | refused |")
            print("|--:|--:|--:|--:|--:|")
            for run, concurrency in enumerate(levels):
                messages = [update_for(z, keyring, f"r{run}") for z in zones]
                before, started = cpu_seconds(knotd.pid), time.monotonic()
                failed = asyncio.run(send_all(port, messages, concurrency))
                wall = time.monotonic() - started
                cpu = cpu_seconds(knotd.pid) - before
                print(f"| {concurrency} | {wall:.2f} s | {cpu:.2f} s | {wall / cpu:.2f}× | {len(failed)} |")
        finally:
            knotd.terminate()
            knotd.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
