"""``python -m uaes_hf.extract`` (also ``accelerate launch -m uaes_hf.extract``)."""

from __future__ import annotations

import sys

from uaes_hf.extract.run import main

if __name__ == "__main__":
    sys.exit(main())
