#!/usr/bin/env python3
"""Reference of the inject benchmark: a plain batched influxdb-client write of line-protocol points.

Reads the points (one line-protocol line each, prepared on the controller from weather_inject's own
simulation) before the clock starts, then writes them in batches with influxdb-client's synchronous write API
over HTTPS (CA-verified), with the token given. Prints one JSON object: points, batches, seconds of the
write loop, points per second.
"""
from __future__ import annotations

import argparse
import json
import time

from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connection", required=True, help="JSON file: influx_url, influx_org, influx_bucket, ca_file")
    parser.add_argument("--token-key", default="inject_token", help="key of the token in the connection file")
    parser.add_argument("--lines", required=True, help="file of line-protocol points")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--precision", default="s")
    args = parser.parse_args()

    with open(args.connection, encoding="utf-8") as handle:
        conn = json.load(handle)
    with open(args.lines, encoding="utf-8") as handle:
        lines = handle.read().splitlines()

    client = InfluxDBClient(url=conn["influx_url"], token=conn[args.token_key], org=conn["influx_org"],
                            ssl_ca_cert=conn["ca_file"], timeout=30_000)
    write_api = client.write_api(write_options=SYNCHRONOUS)
    batches = 0
    began = time.monotonic()
    for offset in range(0, len(lines), args.batch_size):
        write_api.write(bucket=conn["influx_bucket"], org=conn["influx_org"],
                        record=lines[offset:offset + args.batch_size], write_precision=args.precision)
        batches += 1
    elapsed = time.monotonic() - began
    client.close()
    print(json.dumps({"points": len(lines), "batches": batches, "seconds": round(elapsed, 3),
                      "rate": round(len(lines) / elapsed, 1) if elapsed > 0 else None}))


if __name__ == "__main__":
    main()
