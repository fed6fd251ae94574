#!/usr/bin/python3
"""Simulated weather stations for Telegraf's inputs.execd (signal = "STDIN").

Each newline Telegraf writes on stdin asks for one reading per station, printed as InfluxDB line
protocol on stdout. The values follow a bounded random walk so that consecutive readings look like
weather. Exits when stdin closes (Telegraf stopped). Standard library only.

    weather_generator.py --measurement weather paris lyon
"""
import argparse
import random
import re
import sys
import time

# Plausible bounds and step of each field: (low, high, largest change per reading).
FIELDS = {
    "temperature": (-15.0, 40.0, 0.4),
    "humidity": (10.0, 100.0, 1.5),
    "pressure": (970.0, 1040.0, 0.6),
    "wind_speed": (0.0, 30.0, 1.2),
}
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def escape_tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measurement", default="weather")
    parser.add_argument("--seed", type=int, default=None, help="seed the random walk (tests)")
    parser.add_argument("stations", nargs="+")
    args = parser.parse_args()
    if not NAME.match(args.measurement):
        parser.error(f"measurement {args.measurement!r}: letters, digits, _ . - only")

    rng = random.Random(args.seed)
    state = {s: {f: rng.uniform(lo + (hi - lo) / 4, hi - (hi - lo) / 4) for f, (lo, hi, dummy) in FIELDS.items()}
             for s in args.stations}
    measurement = args.measurement
    for dummy in sys.stdin:
        now = time.time_ns()
        lines = []
        for station, values in state.items():
            for field, (lo, hi, step) in FIELDS.items():
                values[field] = min(hi, max(lo, values[field] + rng.uniform(-step, step)))
            fields = ",".join(f"{f}={values[f]:.2f}" for f in FIELDS)
            lines.append(f"{measurement},station={escape_tag(station)} {fields} {now}\n")
        try:
            sys.stdout.write("".join(lines))
            sys.stdout.flush()
        except BrokenPipeError:
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
