#!/usr/bin/env bash
# The contract: every example in proto/examples against its JSON Schema (Debian's
# python3-jsonschema). The C parser's side is tests/common/test_event.c.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/proto/check_examples.py
