#!/usr/bin/env python3
"""atheris fuzzer for the trks reader (how to run: fuzz/README.md)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import main

if __name__ == "__main__":
    main("trks", "fuzz.trks")
