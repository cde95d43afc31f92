"""`python -m scaling.data.demo_tasks DIR` (the README's command; the module lives in
scaling/data/sources/demo_tasks.py)."""

import sys

from scaling.data.sources.demo_tasks import main

if __name__ == "__main__":
    sys.exit(main())
