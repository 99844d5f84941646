#!/usr/bin/python3
"""Checks every example in proto/examples against its JSON Schema: each file under
valid/ must validate, each under invalid/ must not (or must not be JSON at all).
Also checks that the schemas themselves are valid Draft 2020-12 schemas."""
import json
import pathlib
import sys

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker

ROOT = pathlib.Path(__file__).resolve().parents[2] / "proto"

def load(p):
    return json.loads(p.read_text())

def main():
    schemas = {p.name: load(p) for p in ROOT.glob("*.schema.json")}
    store = {}
    for name, s in schemas.items():
        Draft202012Validator.check_schema(s)
        store[s["$id"]] = s
    cases = [("event", "task-event.schema.json"), ("ws", "ws-message.schema.json")]
    passed = failed = 0
    for folder, schema_name in cases:
        resolver = jsonschema.RefResolver.from_schema(schemas[schema_name], store=store)
        validator = Draft202012Validator(schemas[schema_name], resolver=resolver,
                                         format_checker=FormatChecker())
        for expect_valid in (True, False):
            d = ROOT / "examples" / folder / ("valid" if expect_valid else "invalid")
            files = sorted(d.glob("*.json"))
            if not files:
                print(f"FAIL {d}: no examples")
                failed += 1
            for f in files:
                try:
                    doc = json.loads(f.read_text())
                    errors = list(validator.iter_errors(doc))
                except json.JSONDecodeError as e:
                    doc, errors = None, [e]
                ok = (not errors) == expect_valid
                if ok:
                    passed += 1
                else:
                    failed += 1
                    why = errors[0].message if errors else "validated but should not"
                    print(f"FAIL {f.relative_to(ROOT.parent)}: {why}")
    print(f"proto: {passed} passed, {failed} failed")
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
