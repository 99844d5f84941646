#!/usr/bin/python3
"""Validates JSON documents (one per line of FILE) against a proto/ schema:
    check_schema.py task-event.schema.json FILE
Used by test-backend on what backend-api really published and answered. Prints
each failure and exits 1 when any document does not validate."""
import json
import pathlib
import sys

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker

ROOT = pathlib.Path(__file__).resolve().parents[2] / "proto"


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    schemas = {p.name: json.loads(p.read_text()) for p in ROOT.glob("*.schema.json")}
    store = {s["$id"]: s for s in schemas.values()}
    schema = schemas[sys.argv[1]]
    resolver = jsonschema.RefResolver.from_schema(schema, store=store)
    validator = Draft202012Validator(schema, resolver=resolver, format_checker=FormatChecker())
    bad = n = 0
    for line in pathlib.Path(sys.argv[2]).read_text().splitlines():
        if not line.strip():
            continue
        n += 1
        for e in validator.iter_errors(json.loads(line)):
            bad += 1
            print(f"{sys.argv[1]}: {e.message} in {line[:300]}")
            break
    print(f"{n} documents, {bad} invalid")
    return 1 if bad or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
